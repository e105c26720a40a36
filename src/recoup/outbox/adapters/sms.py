"""Text messages over HTTP: a generic JSON gateway and Twilio's Messages API.

The generic gateway (documented in ``docs/channels.md``) takes
``POST {url}/messages`` with ``{"to", "from", "text", "reference", "status_callback"}`` and an
``Idempotency-Key`` header, and answers ``{"id", "status"}``; ``GET {url}/messages?reference=K``
finds a message by our key. Twilio takes ``POST /2010-04-01/Accounts/{sid}/Messages.json``
(form fields ``To``, ``From``, ``Body``, ``StatusCallback``, basic auth with the account SID
and auth token) and answers ``{"sid", "status"}``; its Messages API takes no idempotency key,
so a try after an earlier one (whose answer may have been lost after Twilio created the
message: a timeout, a dropped connection, a 5xx) and the reconciliation after a crash first
look for the message by recipient, date and text in its message list, and record the SID
found instead of texting the debtor twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from recoup.outbox.adapters.base import (
    Accepted,
    DeliveryUnknown,
    OutgoingMessage,
    Permanent,
    Transient,
)
from recoup.outbox.rules import INVALID_NUMBER_CODES

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


def _refusal(response: httpx.Response, code: str | None) -> Exception:
    """Return the error a refused request means: retry on 429/5xx, give up on other 4xx."""
    status = response.status_code
    if status == 429 or status >= 500:
        return Transient(f"provider answered HTTP {status}")
    return Permanent(
        f"provider refused the message: HTTP {status}" + (f", code {code}" if code else ""),
        invalid_contact=code in INVALID_NUMBER_CODES or code == "invalid_number",
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class GatewaySms:
    """A JSON SMS gateway that honours an idempotency key and finds messages by reference."""

    def __init__(
        self,
        *,
        url: str,
        api_key: str | None,
        sender: str | None,
        client: httpx.Client | None = None,
        name: str = "gateway",
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.sender = sender
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(timeout=TIMEOUT, headers=headers)

    def send(self, message: OutgoingMessage) -> Accepted:
        """Post the message with its key; the gateway answers the same id for the same key."""
        try:
            response = self.client.post(
                f"{self.url}/messages",
                json={
                    "to": message.to,
                    "from": message.sender or self.sender,
                    "text": message.text,
                    "reference": message.key,
                    "status_callback": message.status_callback,
                },
                headers={"Idempotency-Key": message.key},
            )
        except httpx.HTTPError as error:
            raise Transient(f"gateway unreachable: {type(error).__name__}") from None
        body = _json(response)
        if response.status_code >= 300:
            raise _refusal(response, str(body.get("code")) if body.get("code") else None)
        if not body.get("id"):
            raise Transient("gateway answered without a message id")
        return Accepted(str(body["id"]), str(body.get("status") or "sent"))

    def lookup(self, message: OutgoingMessage) -> Accepted | None:
        """Find the message of our key at the gateway."""
        try:
            response = self.client.get(f"{self.url}/messages", params={"reference": message.key})
        except httpx.HTTPError:
            raise DeliveryUnknown("gateway unreachable while reconciling") from None
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise DeliveryUnknown(f"gateway answered HTTP {response.status_code} to a lookup")
        body = _json(response)
        return (
            Accepted(str(body["id"]), str(body.get("status") or "sent")) if body.get("id") else None
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


class TwilioSms:
    """Twilio's Programmable Messaging (Messages resource, API version 2010-04-01)."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str | None,
        sender: str | None,
        base_url: str = "https://api.twilio.com",
        client: httpx.Client | None = None,
        name: str = "twilio",
    ) -> None:
        self.name = name
        self.sender = sender
        self.endpoint = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        auth = httpx.BasicAuth(account_sid, auth_token or "")
        self.client = client or httpx.Client(timeout=TIMEOUT, auth=auth)

    def send(self, message: OutgoingMessage) -> Accepted:
        """Create a Message resource, unless an earlier try already did."""
        if message.earlier_tries:
            try:
                found = self.lookup(message)
            except DeliveryUnknown as error:
                raise Transient(f"not sent again until Twilio can tell: {error}") from None
            if found is not None:
                return found
        form = {"To": message.to, "From": message.sender or self.sender or "", "Body": message.text}
        if message.status_callback:
            form["StatusCallback"] = message.status_callback
        try:
            response = self.client.post(self.endpoint, data=form)
        except httpx.HTTPError as error:
            raise Transient(f"Twilio unreachable: {type(error).__name__}") from None
        body = _json(response)
        if response.status_code >= 300:
            raise _refusal(response, str(body.get("code")) if body.get("code") else None)
        if not body.get("sid"):
            raise Transient("Twilio answered without a message SID")
        return Accepted(str(body["sid"]), str(body.get("status") or "queued"))

    def lookup(self, message: OutgoingMessage) -> Accepted | None:
        """Look for the message among those sent to the number since the first try."""
        params = {"To": message.to}
        if message.sending_since is not None:
            since = message.sending_since - timedelta(days=1)
            params["DateSent>"] = since.date().isoformat()
        try:
            response = self.client.get(self.endpoint, params=params)
        except httpx.HTTPError:
            raise DeliveryUnknown("Twilio unreachable while reconciling") from None
        if response.status_code >= 300:
            raise DeliveryUnknown(f"Twilio answered HTTP {response.status_code} to a lookup")
        for item in _json(response).get("messages") or []:
            if isinstance(item, dict) and item.get("body") == message.text and item.get("sid"):
                return Accepted(str(item["sid"]), str(item.get("status") or "sent"))
        return None

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()
