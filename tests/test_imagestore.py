"""ImageStore.get_next_sequence_index and promote_pending_image, on a real data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from modelshelf.errors import Conflict, InvalidInput, NotFound
from modelshelf.imagestore import ImageStore
from tests.conftest import Client, migrate, shelf_of
from tests.factories import LegacyLibrary, fake_sha, image_size

SHA = fake_sha(1)
QUALITIES = ("high", "medium", "low")


@pytest.fixture
async def store(client: Client, legacy: LegacyLibrary) -> ImageStore:
    """Model SHA with two images (100 and 110 px wide); pending 7 and 8 with images."""
    legacy.add_model(
        1,
        hash_hex=SHA,
        images=[
            legacy.image("a.png", width=100, height=50),
            legacy.image("b.png", width=110, height=50),
        ],
    )
    legacy.add_model(7, images=[legacy.image("p7.jpg", width=70, height=40)])
    legacy.add_model(8, images=[legacy.image("p8.jpg", width=80, height=40)])
    legacy.add_model(9)  # pending, no image
    await migrate(client, legacy)
    return shelf_of(client).images


def width(store: ImageStore, seq: int) -> int:
    return image_size(store.rendition_path(SHA, seq, "high"))[0]


async def test_next_sequence_index_is_one_past_the_last(store: ImageStore) -> None:
    assert await store.get_next_sequence_index(SHA) == 2
    assert await store.get_next_sequence_index(fake_sha(99)) == 0


async def test_promoting_to_the_next_seq_adds_an_image_and_removes_the_original(
    store: ImageStore,
) -> None:
    original = store.pending_path(7, "jpg")
    assert original.is_file()
    assert await store.promote_pending_image(7, SHA, 2) == f"{SHA}_2.webp"
    assert width(store, 2) == 70
    assert all(store.rendition_path(SHA, 2, q).is_file() for q in QUALITIES)
    assert not original.exists()
    assert await store.list_names(SHA) == [f"{SHA}_{s}.webp" for s in range(3)]
    with pytest.raises(NotFound):
        await store.pending_file(7)


async def test_a_taken_seq_is_replaced_only_when_asked(store: ImageStore) -> None:
    with pytest.raises(Conflict):
        await store.promote_pending_image(7, SHA, 0)
    assert width(store, 0) == 100
    assert store.pending_path(7, "jpg").is_file()
    await store.promote_pending_image(7, SHA, 0, replace=True)
    assert width(store, 0) == 70
    assert await store.get_next_sequence_index(SHA) == 2


@pytest.mark.parametrize(
    ("pending_id", "sha256", "seq", "error"),
    [
        pytest.param(7, SHA, 3, InvalidInput, id="seq-past-the-end"),
        pytest.param(7, fake_sha(99), 0, NotFound, id="unknown-model"),
        pytest.param(9, SHA, 2, NotFound, id="pending-without-image"),
        pytest.param(404, SHA, 2, NotFound, id="unknown-pending"),
    ],
)
async def test_refused_promotions_change_nothing(
    store: ImageStore,
    data_dir: Path,
    pending_id: int,
    sha256: str,
    seq: int,
    error: type[Exception],
) -> None:
    before = sorted(p.name for p in (data_dir / "images").rglob("*") if p.is_file())
    with pytest.raises(error):
        await store.promote_pending_image(pending_id, sha256, seq)
    after = sorted(p.name for p in (data_dir / "images").rglob("*") if p.is_file())
    assert after == before
    assert not any((data_dir / "images" / ".staging").iterdir())


async def test_two_promotions_racing_for_one_seq_never_overwrite_each_other(
    store: ImageStore,
) -> None:
    results = await asyncio.gather(
        store.promote_pending_image(7, SHA, 2),
        store.promote_pending_image(8, SHA, 2),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "str"]
    winner = 7 if results[0] == f"{SHA}_2.webp" else 8
    assert width(store, 2) == {7: 70, 8: 80}[winner]
    loser = 15 - winner
    assert store.pending_path(loser, "jpg").is_file()
