"""The adapter an institution's channel settings name, with secrets from the environment."""

from __future__ import annotations

from recoup.config import get_settings
from recoup.contact.channels import Channel
from recoup.institutions.settings import ChannelSettings
from recoup.outbox.adapters.base import Adapter
from recoup.outbox.adapters.email import SmtpEmail, SmtpJournal
from recoup.outbox.adapters.sandbox import SandboxProvider
from recoup.outbox.adapters.sink import LogSink
from recoup.outbox.adapters.sms import GatewaySms, TwilioSms


def adapter_for(channel: Channel, settings: ChannelSettings, *, institution_code: str) -> Adapter:
    """Return the adapter that sends ``channel`` for an institution."""
    config = get_settings()
    folder = config.data_dir / "outbox" / institution_code
    if channel is Channel.SMS:
        if settings.sms_provider == "sandbox":
            return SandboxProvider(channel="sms")
        if settings.sms_provider == "gateway" and settings.sms_gateway_url:
            return GatewaySms(
                url=settings.sms_gateway_url,
                api_key=config.sms_api_key or None,
                sender=settings.sms_sender,
            )
        if settings.sms_provider == "twilio" and settings.twilio_account_sid:
            return TwilioSms(
                account_sid=settings.twilio_account_sid,
                auth_token=config.twilio_auth_token or None,
                sender=settings.sms_sender,
                base_url=settings.twilio_base_url,
            )
        return LogSink(folder / "sms.jsonl", name="log")
    if channel is Channel.EMAIL:
        if settings.email_provider == "sandbox":
            return SandboxProvider(channel="email")
        if settings.email_provider == "smtp":
            return SmtpEmail(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.email_from,
                journal=SmtpJournal(folder / "smtp-journal.log"),
                starttls=settings.smtp_starttls,
                username=settings.smtp_username,
                password=config.smtp_password or None,
            )
        return LogSink(folder / "email.jsonl", name="log")
    # Letters leave as print files; the outbox records them in a local print queue.
    return LogSink(folder / f"{channel.value}.jsonl", name="log")
