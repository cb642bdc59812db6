"""Images attached to messages: each stored once by its sha256, linked to messages in order."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from chatcore.types import Image


def save_images(cur: duckdb.DuckDBPyConnection, images: Sequence[Image]) -> None:
    """Store images not stored yet; one already kept (same hash) is not stored twice."""
    for image in images:
        cur.execute(
            """
            INSERT INTO images (sha256, mime, bytes, data) VALUES (?, ?, ?, ?)
            ON CONFLICT (sha256) DO NOTHING
            """,
            [image.sha256, image.mime, len(image.data), image.data],
        )


def attach_images(cur: duckdb.DuckDBPyConnection, message_id: int, hashes: Sequence[str]) -> None:
    for position, sha256 in enumerate(hashes):
        cur.execute(
            "INSERT INTO message_images (message_id, position, sha256) VALUES (?, ?, ?)",
            [message_id, position, sha256],
        )


def load_images(cur: duckdb.DuckDBPyConnection, hashes: Sequence[str]) -> dict[str, Image]:
    """The stored images among these hashes, by hash."""
    if not hashes:
        return {}
    rows = cur.execute(
        "SELECT sha256, mime, data FROM images WHERE sha256 IN (SELECT unnest(?))",
        [list(hashes)],
    ).fetchall()
    return {sha256: Image(sha256, mime, bytes(data)) for sha256, mime, data in rows}


def image_rows(
    cur: duckdb.DuckDBPyConnection, message_ids: Sequence[int]
) -> list[tuple[int, Image]]:
    """(message id, image) for every image attached to these messages, in order."""
    if not message_ids:
        return []
    rows = cur.execute(
        """
        SELECT mi.message_id, i.sha256, i.mime, i.data
        FROM message_images mi JOIN images i ON i.sha256 = mi.sha256
        WHERE mi.message_id IN (SELECT unnest(?)) ORDER BY mi.message_id, mi.position
        """,
        [list(message_ids)],
    ).fetchall()
    return [(message_id, Image(sha, mime, bytes(data))) for message_id, sha, mime, data in rows]
