from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from recoup.audit.rules import GENESIS_HASH, ChainLink, event_hash, find_break


def _chain(length: int) -> list[ChainLink]:
    links = []
    previous = GENESIS_HASH
    for sequence in range(1, length + 1):
        fields = dict(
            sequence=sequence,
            institution_id=1,
            actor="u",
            action="a",
            object_type="t",
            object_id=str(sequence),
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            details={"n": sequence},
            previous_hash=previous,
        )
        digest = event_hash(**fields)
        links.append(ChainLink(row_id=sequence, hash=digest, **fields))
        previous = digest
    return links


class TestFindBreak:
    def test_intact_chain(self) -> None:
        links = _chain(5)
        assert find_break(links, head_sequence=5, head_hash=links[-1].hash) is None

    def test_altered_detail_is_found_at_that_row(self) -> None:
        links = _chain(5)
        links[2] = replace(links[2], details={"n": 99})
        broken = find_break(links, head_sequence=5, head_hash=links[-1].hash)
        assert broken is not None
        assert broken.row_id == 3
        assert "altered" in broken.reason

    def test_deleted_row_is_found_at_the_next_row(self) -> None:
        links = _chain(5)
        del links[1]
        broken = find_break(links, head_sequence=5, head_hash=links[-1].hash)
        assert broken is not None
        assert broken.row_id == 3

    def test_deleted_tail_is_found_through_the_head(self) -> None:
        links = _chain(5)
        broken = find_break(links[:4], head_sequence=5, head_hash=links[-1].hash)
        assert broken is not None
        assert "head" in broken.reason


class TestHashFormats:
    FIELDS: ClassVar[dict[str, Any]] = dict(
        sequence=3,
        institution_id=None,
        actor="张伟",
        action="pii.reveal",
        object_type="debtor",
        object_id="7",
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        details={"reason": "debtor called", "fields": ["name"]},
        previous_hash="ab" * 32,
    )

    def test_events_written_before_keying_still_hash_as_they_were_stored(self) -> None:
        import hashlib
        import json

        stored = hashlib.sha256(
            json.dumps(
                {**self.FIELDS, "occurred_at": "2026-01-02T03:04:05.000006+00:00"},
                sort_keys=True,
                ensure_ascii=False,
                separators=(",", ":"),
            ).encode()
        ).hexdigest()
        assert event_hash(**self.FIELDS) == stored

    def test_a_keyed_hash_names_its_key_and_fits_the_hash_column(self) -> None:
        digest = event_hash(**self.FIELDS, key_id="a12", key=b"k" * 32)
        assert digest.startswith("a12:")
        assert len(event_hash(**self.FIELDS, key_id="a" * 16, key=b"k" * 32)) <= 64
        assert digest != event_hash(**self.FIELDS, key_id="a12", key=b"j" * 32)
