"""Threads webhooks: replies and mentions delivered the moment they are written.

    [sources.options]                         # of a kind = "threads" source
    app_secret_env = "THREADS_APP_SECRET"     # the Threads app's secret: signs deliveries
    verify_token_env = "THREADS_VERIFY_TOKEN" # answers the endpoint check

Meta checks the callback URL (`GET /threads/{name}?hub.mode=subscribe&hub.verify_token=…
&hub.challenge=…`) and then POSTs each notification signed with the Threads app secret
(`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`), as its other webhooks
are. The documented shape (https://developers.facebook.com/docs/threads/webhooks):

    {"app_id": "…", "topic": "moderate", "target_id": "…", "time": 1723226877,
     "subscription_id": "…", "has_uid_field": false,
     "values": {"field": "replies", "value": {"id", "username", "text", "media_type",
                "permalink", "replied_to": {"id"}, "root_post": {"id", "owner_id",
                "username"}, "shortcode", "timestamp"}}}

`replies` (topic "moderate") are replies on the profile's posts, `mentions` (topic
"interaction") posts that tag it; other fields (publish, delete) are not mentions and are
left alone. Each item becomes the very mention polling makes of it (same id, same
thread), so whichever arrives second is a duplicate; polling goes on beside the webhooks,
and finds what a delivery missed (Meta sends nothing for private profiles, nor before the
app passed App Review).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from socialcare.adapters.collectors.push import Pushed, Refused, check_hub_signature, hub_challenge
from socialcare.adapters.collectors.threads import mention_of, time_of
from socialcare.bot.model import RawMention
from socialcare.bot.team import Source

M = TypeVar("M", bound=BaseModel)
FIELDS = frozenset({"replies", "mentions"})
MAX_TEXT = 100_000
MAX_ITEMS = 100


def _id_text(value: Any) -> Any:
    # Graph ids come as strings, sometimes as numbers; they are compared as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


GraphId = Annotated[str, BeforeValidator(_id_text),
                    StringConstraints(pattern=r"^[0-9]{1,40}$")]
# Threads usernames are letters, digits, dots and underscores; room is left for more, but
# never for control characters or spaces (the username is part of a thread's key).
Username = Annotated[str, StringConstraints(pattern=r"^[^\s\x00-\x1f\x7f:]{1,64}$")]


class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: GraphId
    owner_id: GraphId | None = None


class _Media(BaseModel):
    """A reply or a post as a delivery gives it (the fields polling reads too)."""

    model_config = ConfigDict(extra="ignore")

    id: GraphId
    text: str | None = Field(default=None, max_length=MAX_TEXT)
    username: Username | None = None
    timestamp: str | None = Field(default=None, max_length=64)
    permalink: str | None = Field(default=None, max_length=2048)
    replied_to: _Ref | None = None
    root_post: _Ref | None = None


class _Change(BaseModel):
    model_config = ConfigDict(extra="ignore")

    field: str = Field(max_length=64)
    value: dict[str, Any]


class ThreadsWebhooks:
    """Checks and reads one Threads source's webhook deliveries."""

    def __init__(self, *, user_id: str, app_secret: str, verify_token: str) -> None:
        self._user_id = user_id
        self._app_secret = app_secret
        self._verify_token = verify_token

    def challenge(self, query: Mapping[str, str]) -> str:
        """Answer Meta's check of the endpoint with its challenge, or refuse it."""
        return hub_challenge(query, self._verify_token)

    async def receive(self, source: Source, pushed: Pushed, *,
                      now: datetime) -> list[RawMention]:
        """Return the mentions of a signed delivery; refuse one that is not."""
        check_hub_signature(pushed, self._app_secret)
        try:
            body = json.loads(pushed.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise Refused(400, f"malformed JSON: {error}") from None
        except RecursionError:
            raise Refused(400, "malformed JSON: nested too deeply") from None
        if not isinstance(body, dict):
            raise Refused(400, f"expected a JSON object, got {type(body).__name__}")
        values = body.get("values")
        # Documented as one object; a list of them is read as well.
        listed = isinstance(values, list)
        if not listed and not isinstance(values, dict):
            raise Refused(400, "values: expected an object with field and value")
        changes: list[Any] = values if isinstance(values, list) else [values]
        if len(changes) > MAX_ITEMS:
            raise Refused(400, f"values: more than {MAX_ITEMS} notifications in one delivery")
        found = []
        for at, raw in enumerate(changes):
            where = f"values[{at}]." if listed else "values."
            change = _valid(_Change, raw, where)
            if change.field not in FIELDS:
                continue  # publish, delete: nothing a customer wrote
            item = _valid(_Media, change.value, where + "value.")
            if not item.text or not item.text.strip() or self._elsewhere(item):
                continue
            found.append(mention_of(source, item.model_dump(exclude_none=True),
                                    time_of(item.timestamp, now),
                                    mention=change.field == "mentions"))
        return found

    def _elsewhere(self, item: _Media) -> bool:
        # A reply under another profile's post: an app serving several profiles sends
        # every one's replies to each callback.
        owner = item.root_post.owner_id if item.root_post else None
        return owner is not None and owner != self._user_id


def _valid(model: type[M], data: Any, where: str) -> M:
    """Validate `data`, or refuse the delivery naming the first wrong field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        if not isinstance(data, dict):
            raise Refused(400, f"{where.rstrip('.')}: expected a JSON object") from None
        raise Refused(400, f"{where}{field}: {first['msg']}") from None
