"""Telegram groups and channels where the bot is a member: their messages are mentions.

    [[sources]]
    name = "telegram-groups"
    kind = "telegram"
    platform = "telegram"
    tier = "main"
    # options = { chats = [-1001906889117] }   # default: every group the bot is in

The bot must see the messages: in a group that means privacy mode off (BotFather
/setprivacy) or the bot an admin; in a channel, the bot an admin. The team's own
chats (card channels, escalation and report channels) are never collected.

A message's id is `{chat}:{message}`; a reply's parent is the message it answers,
so a reply chain is one case, and the team's answer is sent as a reply to the
customer's message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from pydantic import BaseModel, ConfigDict
from telegram import Bot, Chat, InputFile, Message, ReplyParameters
from telegram.error import TelegramError

from socialcare.bot.answers.pictures import MB, Picture, PictureLimits
from socialcare.bot.model import Author, Mention, RawMention
from socialcare.bot.ports import Published, PublishFailed
from socialcare.bot.team import Source


class Options(BaseModel):
    """A Telegram groups source's options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chats: tuple[int, ...] = ()


class TelegramGroups:
    """Turns group and channel messages into mentions; sends the replies."""

    def __init__(self, bot: Bot, options: Options, *, team_chats: Collection[str]) -> None:
        self._bot = bot
        self._chats = frozenset(options.chats)
        self._team_chats = frozenset(team_chats)

    can_publish = True

    def watches(self, chat: Chat) -> bool:
        """Tell whether messages of this chat are collected."""
        if chat.type == Chat.PRIVATE or str(chat.id) in self._team_chats:
            return False
        return not self._chats or chat.id in self._chats

    def mention(self, source: Source, message: Message) -> RawMention | None:
        """The mention a message makes; None for one without text or from a bot."""
        text = message.text or message.caption
        if not text or (message.from_user is not None and message.from_user.is_bot):
            return None
        chat = message.chat
        parent = message.reply_to_message
        return RawMention(
            source=source.name, external_id=f"{chat.id}:{message.message_id}", text=text,
            published_at=message.date, url=link(chat, message.message_id),
            author=_author(message),
            parent_id=f"{chat.id}:{parent.message_id}" if parent is not None else None,
        )

    async def publish(self, source: Source, to: Mention, text: str) -> Published:
        """Send the reply into the chat, as a reply to the customer's message."""
        return await _replying(to, lambda chat, reply: self._bot.send_message(
            chat_id=chat, text=text, reply_parameters=reply))


    def picture_limits(self, source: Source, to: Mention | None = None) -> PictureLimits:
        """sendPhoto: up to 10 MB, a caption of up to 1,024 characters
        (https://core.telegram.org/bots/api#sendphoto)."""
        return PictureLimits(max_bytes=10 * MB, types=("image/png", "image/jpeg"),
                             max_caption=1024)

    async def publish_picture(self, source: Source, to: Mention, text: str,
                              picture: Picture) -> Published:
        """Send the photo with the text as its caption, replying to the customer."""
        return await _replying(to, lambda chat, reply: self._bot.send_photo(
            chat_id=chat, photo=InputFile(picture.content, filename=picture.filename),
            caption=text or None, reply_parameters=reply))


async def _replying(to: Mention, send: Callable[[int, ReplyParameters], Awaitable[Message]]
                    ) -> Published:
    """Send something in reply to the customer's message `to` (its id is "chat:message")."""
    chat, _, message = to.external_id.partition(":")
    try:
        reply = ReplyParameters(message_id=int(message), allow_sending_without_reply=True)
        sent = await send(int(chat), reply)
    except ValueError:
        raise PublishFailed(f"not a Telegram message id: {to.external_id}") from None
    except TelegramError as error:
        raise PublishFailed(f"Telegram: {error.message}") from None
    return Published(external_id=f"{chat}:{sent.message_id}",
                     url=link(sent.chat, sent.message_id))


def link(chat: Chat, message_id: int) -> str | None:
    """The public link of a message: by the chat's username, or t.me/c/ for members."""
    if chat.username:
        return f"https://t.me/{chat.username}/{message_id}"
    if str(chat.id).startswith("-100"):
        return f"https://t.me/c/{str(chat.id).removeprefix('-100')}/{message_id}"
    return None


def _author(message: Message) -> Author:
    if message.sender_chat is not None:
        chat = message.sender_chat
        return Author(id=str(chat.id), name=chat.title,
                      handle=f"@{chat.username}" if chat.username else None,
                      url=f"https://t.me/{chat.username}" if chat.username else None)
    user = message.from_user
    if user is None:
        return Author()
    return Author(id=str(user.id), name=user.full_name,
                  handle=f"@{user.username}" if user.username else None,
                  url=f"https://t.me/{user.username}" if user.username else None)
