"""What every user can do: read the latest stories, one story, related stories, search."""

from __future__ import annotations

from telegram import CallbackQuery, Update

from bot import formatting as fmt
from bot.handlers import command_args, edit, parse_id, send
from bot.services import NewsContext
from storage.errors import QueryError, UnknownStoryError


def _is_admin(update: Update, context: NewsContext) -> bool:
    user = update.effective_user
    return context.services.is_admin(user.id if user else None)


async def start(update: Update, context: NewsContext) -> None:
    """Say what the bot does and list the commands."""
    await send(update, context, fmt.render_help(is_admin=_is_admin(update, context)))


async def latest(update: Update, context: NewsContext) -> None:
    """/latest [N]: the N newest stories with pagination buttons."""
    args = command_args(context)
    if args and not args.isdecimal():
        await send(update, context, fmt.hint("Usage: /latest [N], e.g. /latest 3"))
        return
    limit = fmt.clamp_latest(int(args)) if args else fmt.LATEST_DEFAULT
    page = await context.services.latest_page(limit)
    await send(
        update,
        context,
        fmt.render_latest(page.stories, limit=limit, has_newer=False, has_older=page.has_older),
    )


async def story(update: Update, context: NewsContext) -> None:
    """/story <id>: one story with a longer summary and its links."""
    story_id = parse_id(command_args(context))
    if story_id is None:
        await send(update, context, fmt.hint("Usage: /story <id>, e.g. /story 12"))
        return
    await _send_story(update, context, story_id)


async def _send_story(update: Update, context: NewsContext, story_id: int) -> None:
    found = await context.services.store.get(story_id)
    if found is None:
        await send(update, context, fmt.hint(f"No story #{story_id}. Try /latest for ids."))
        return
    summary = await context.services.long_summary(found)
    await send(update, context, fmt.render_story(found, summary))


async def related(update: Update, context: NewsContext) -> None:
    """/related <id|words>: a story's links and related stories, or stories matching words."""
    args = command_args(context)
    if not args:
        await send(
            update, context, fmt.hint("Usage: /related <id> or /related <words>, e.g. /related 12")
        )
        return
    story_id = parse_id(args)
    if story_id is None:
        hits = await context.services.related_to_words(args)
        await send(update, context, fmt.render_matches(args, hits))
        return
    await _send_related(update, context, story_id)


async def _send_related(update: Update, context: NewsContext, story_id: int) -> None:
    found = await context.services.related_to_story(story_id)
    if found is None:
        await send(update, context, fmt.hint(f"No story #{story_id}. Try /latest for ids."))
        return
    await send(update, context, fmt.render_related(found.story, found.hits))


async def search(update: Update, context: NewsContext) -> None:
    """/search <words>: full-text search, best first, paginated."""
    # Shortened up front so every page of this search uses the very query shown.
    query = fmt.fit_query(command_args(context))
    if not query:
        await send(update, context, fmt.hint("Usage: /search <words>, e.g. /search election"))
        return
    try:
        page = await context.services.search_page(query, limit=fmt.SEARCH_PAGE, offset=0)
    except QueryError as exc:
        await send(update, context, fmt.hint(f"Cannot search for that: {exc}"))
        return
    await send(update, context, fmt.render_search(query, page.hits, offset=0, total=page.total))


async def button(update: Update, context: NewsContext) -> None:
    """Inline buttons: pagination edits the message; Story/Related send a new one."""
    query = update.callback_query
    if query is None:
        return
    match fmt.decode_action(query.data):
        case fmt.LatestNav() as nav:
            await _page_latest(query, context, nav)
        case fmt.SearchNav() as nav:
            await _page_search(query, context, nav)
        case fmt.ShowRelated(story_id):
            await query.answer()
            await _send_related(update, context, story_id)
        case fmt.ShowStory(story_id):
            await query.answer()
            await _send_story(update, context, story_id)
        case None:
            await query.answer("That button is no longer valid.")


async def _page_latest(query: CallbackQuery, context: NewsContext, nav: fmt.LatestNav) -> None:
    older, newer = (nav.cursor, None) if nav.direction == "o" else (None, nav.cursor)
    try:
        page = await context.services.latest_page(nav.limit, older_than=older, newer_than=newer)
    except UnknownStoryError:
        await query.answer("That page changed; send /latest again.")
        return
    if not page.stories:
        await query.answer("No more stories that way.")
        return
    await query.answer()
    reply = fmt.render_latest(
        page.stories, limit=nav.limit, has_newer=page.has_newer, has_older=page.has_older
    )
    await edit(query, reply)


async def _page_search(query: CallbackQuery, context: NewsContext, nav: fmt.SearchNav) -> None:
    try:
        page = await context.services.search_page(
            nav.query, limit=fmt.SEARCH_PAGE, offset=nav.offset
        )
    except QueryError as exc:
        await query.answer(f"Cannot search for that: {exc}"[:200])
        return
    if not page.hits:
        await query.answer("No more results.")
        return
    await query.answer()
    await edit(query, fmt.render_search(nav.query, page.hits, offset=nav.offset, total=page.total))


async def unknown(update: Update, context: NewsContext) -> None:
    """Anything no other handler took: a one-line hint."""
    message = update.effective_message
    text = message.text if message is not None and message.text else ""
    if text.startswith("/"):
        name, _, addressee = text.split()[0].partition("@")
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # a command for another bot in a group
        await send(update, context, fmt.hint(f"Unknown command {name}. Send /help for the list."))
    else:
        await send(update, context, fmt.hint("Send /help to see what I can do, e.g. /latest."))
