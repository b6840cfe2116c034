"""Following courses: kept in config.toml, applied at once by a running daemon."""

from __future__ import annotations

from dataclasses import replace

from .. import kinds
from ..errors import MalformedEvent, NotFound, PrivacyRefused
from ..event import coordinate, parse_coordinate
from ..nips.nip19 import decode
from .context import ServiceContext

__all__ = ["course_coordinate", "follow_course", "unfollow_course", "followed_courses"]


def course_coordinate(text: str) -> str:
    """A course as ``31924:<pubkey>:<d>``, from that form or from an ``naddr``."""
    text = text.strip()
    if text.startswith("naddr1"):
        pointer = decode(text).data
        text = coordinate(pointer.kind, pointer.pubkey, pointer.identifier)
    kind, _, _ = parse_coordinate(text)
    if kind != kinds.COURSE:
        raise MalformedEvent(f"{text!r} is a kind {kind} coordinate, not a course (31924)", field="course")
    return text


async def _change(ctx: ServiceContext, add: str | None = None, remove: str | None = None) -> tuple[str, ...]:
    """Apply one change to the courses in config.toml as the file says now (hand edits made
    while the daemon runs are kept), then to the running daemon's follows."""
    from ..daemon.config import load_config, update_config

    # Re-read the file (not ctx.config, which may carry this run's --relay/--port overrides).
    override = ctx.config.data_dir if ctx.config.config_path.parent == ctx.config.data_dir else None
    current = load_config(override).follow_courses
    if remove is not None and remove not in current:
        raise NotFound(f"not following {remove}")
    courses = tuple(c for c in dict.fromkeys([*current, *([add] if add else [])]) if c != remove)
    update_config(ctx.config.config_path, {("follow", "courses"): courses})
    ctx.config = replace(ctx.config, follow_courses=courses)
    if ctx.follows is not None:
        ctx.follows.courses = list(courses)
        await ctx.follows.apply()
    return courses


def followed_courses(ctx: ServiceContext) -> list[str]:
    return list(ctx.config.follow_courses)


async def follow_course(ctx: ServiceContext, course: str) -> list[str]:
    """Follow a course (its lessons and the host's answers reach the index); idempotent.

    A private course is refused: following puts its coordinate in REQs, which tells every relay
    who follows it; its invitation already brings its lessons (the private calendar items)."""
    coord = course_coordinate(course)
    known = await ctx.store.course(coord, now=ctx.clock.now())
    if known is not None and known.private:
        raise PrivacyRefused(
            f"course {coord} is private: you are invited to it; your daemon follows it already "
            "(following it by name would tell your relays which course you take)"
        )
    return list(await _change(ctx, add=coord))


async def unfollow_course(ctx: ServiceContext, course: str) -> list[str]:
    return list(await _change(ctx, remove=course_coordinate(course)))
