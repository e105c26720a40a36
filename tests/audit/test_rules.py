from dataclasses import replace
from datetime import UTC, datetime

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
