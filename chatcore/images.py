"""Images a user attaches for a vision model: checked, hashed, and refused with a clear reason.

Only what Ollama's vision models read (PNG, JPEG, WebP, GIF), recognised by their first bytes
rather than by a file name or a client's claim.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence

from chatcore.errors import InvalidInput
from chatcore.types import Image

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGES = 8
ACCEPTED_TYPES = ("png", "jpg", "jpeg", "webp", "gif")  # what the chat input offers


def image_type(data: bytes) -> str | None:
    """The image's MIME type from its signature, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def valid_image(data: bytes, name: str = "the image") -> Image:
    if not data:
        raise InvalidInput(f"{name} is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput(
            f"{name} is too large ({len(data) / 1024 / 1024:.1f} MB; "
            f"at most {MAX_IMAGE_BYTES // 1024 // 1024} MB per image)."
        )
    mime = image_type(data)
    if mime is None:
        raise InvalidInput(f"{name} is not a PNG, JPEG, WebP or GIF image.")
    return Image(hashlib.sha256(data).hexdigest(), mime, data)


def valid_images(images: Sequence[bytes]) -> list[Image]:
    if len(images) > MAX_IMAGES:
        raise InvalidInput(f"Too many images ({len(images)}; at most {MAX_IMAGES} a message).")
    numbered = len(images) > 1
    return [
        valid_image(data, f"Image {index + 1}" if numbered else "The image")
        for index, data in enumerate(images)
    ]


def decoded_images(encoded: Sequence[str]) -> list[bytes]:
    """Base64 strings (the REST API's and Ollama's `images`) as bytes; InvalidInput if not."""
    decoded = []
    for index, text in enumerate(encoded):
        try:
            decoded.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError) as error:
            raise InvalidInput(f"images[{index}] is not valid base64.") from error
    return decoded


def refused_for(model: str) -> InvalidInput:
    return InvalidInput(
        f"{model} can't see images: it has no vision capability. "
        "Remove the images or pick a vision model (e.g. gemma3, qwen2.5vl, llava)."
    )
