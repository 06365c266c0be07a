"""The report's roll-ups on PostgreSQL: counts per quarter hour and durations per day,
for every breakdown, kept in step with the facts by triggers (migration 0022).

A month of a million cases was sorted eight times over for one `/report month`. Now
the report sums small rows instead:

- `report_counts`: per quarter hour of publication (so that any timezone's days are
  whole quarters) and breakdown key, the cases, the dismissed, the answered, the
  first-answer classes (met, late, waiting, dismissed late — missed and pending follow
  from `now`) and the resolved by messages taken;
- `report_durations`: per UTC day and per hour of publication (`span` 24 or 1; `hour`
  the first, from the epoch), breakdown key, measure (reaction, collector lag,
  resolution; and the chart's capped reaction minute) and bucket of
  `socialcare.bot.report_text.shown_bucket`, how many durations fall in it. A period
  reads the UTC days it holds whole, then the whole hours at its ends; a zone's offset
  in quarter hours leaves parts of an hour, counted from the facts themselves by the
  very query the triggers run.

A percentile is found in the bucket counts; when its two neighbouring ranks fall in
different buckets, their exact values are read from the facts (an index read each).
So a percentile is exact to the precision `duration` shows every duration at.

Like the wallboard's, the rows are rows of changes (+ on insert, − on delete, both on
an update that moves a figure), appended and never updated, so that no transaction
waits on a counter row; `fold` sums them now and then. SQLite keeps no roll-ups: it
aggregates the period's facts in Python (`socialcare.bot.reports.aggregate`).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

QUARTER_SECONDS = 900
HOUR_SECONDS = 3_600
SPANS = (1, 24)  # hours
# Fold once this many rows of changes have piled up.
FOLD_ROWS = 5_000



def topics_sql(row: str) -> str:
    """The topics of a facts row as an array; the key of no topic ('-') if none."""
    return (f"coalesce(nullif(array_remove(string_to_array({row}.topics, ','), ''), '{{}}'), "
            f"ARRAY['-'])")


# The breakdowns, as (dimension, key) of a facts row `r` (a case under each topic).
_KEYS = ("SELECT * FROM (VALUES ('all', 'all'), ('tier', r.tier), ('platform', r.platform), "
         "('brand', r.brand), ('agent', r.first_answer_by), "
         "('language', coalesce(r.language, '-'))) AS v "
         f"UNION ALL SELECT 'topic', t FROM unnest({topics_sql('r')}) AS t")
_FIRST_ANSWER = {
    "met": "r.first_answer_at <= r.response_due_at",
    "late": "r.first_answer_at > r.response_due_at",
    "waiting": "r.first_answer_at IS NULL AND r.dismissed_at IS NULL",
    "dismissed_late": ("r.first_answer_at IS NULL AND r.dismissed_at IS NOT NULL "
                       "AND r.dismissed_at > r.response_due_at"),
}
_RESOLVED = {
    "resolved_1": "r.messages_to_resolve <= 1", "resolved_2": "r.messages_to_resolve = 2",
    "resolved_3": "r.messages_to_resolve = 3", "resolved_4": "r.messages_to_resolve >= 4",
}
COUNTS = ("cases", "dismissed", "answered", *_FIRST_ANSWER, *_RESOLVED)
COUNT_KEYS = ("quarter", "dimension", "key")
DURATION_KEYS = ("span", "hour", "dimension", "key", "measure", "bucket")
# The columns whose change moves a figure (an update changing none appends nothing).
WATCHED = ("published_at", "tier", "platform", "brand", "first_answer_by", "language",
           "topics", "standing", "first_answer_at", "response_due_at", "dismissed_at",
           "messages_to_resolve", "reaction_seconds", "lag_seconds", "resolution_seconds")
HISTOGRAM_CAP = 120  # as `socialcare.bot.reports.HISTOGRAM_CAP`


def bucket_sql(value: str) -> str:
    """`socialcare.bot.report_text.shown_bucket` in SQL (round() of a double rounds half
    to even, as Python's round does)."""
    minutes = f"round({value} / 60)"
    return (f"CASE WHEN {value} < 60 THEN CAST(round(greatest({value}, 0)) AS integer) "
            f"WHEN {minutes} < 2880 THEN 1000 + CAST({minutes} AS integer) "
            f"ELSE 100000 + CAST(floor({minutes} / 60) AS integer) END")


def _epoch_unit(column: str, seconds: int) -> str:
    return f"CAST(floor(date_part('epoch', {column}) / {seconds}) AS bigint)"


def count_changes(rows: str, sign: str) -> str:
    """INSERT the counts of the facts rows `rows` (a table or a parenthesised query),
    each multiplied by `sign` ('' or '-')."""
    counts = [f"{sign}count(*)",
              f"{sign}count(*) FILTER (WHERE r.standing = 'dismissed')",
              f"{sign}count(r.reaction_seconds)",
              *(f"{sign}count(*) FILTER (WHERE {c})" for c in _FIRST_ANSWER.values()),
              *(f"{sign}count(*) FILTER (WHERE r.standing = 'resolved' AND {c})"
                for c in _RESOLVED.values())]
    return (f"INSERT INTO report_counts ({', '.join((*COUNT_KEYS, *COUNTS))}) "
            f"SELECT {_epoch_unit('r.published_at', QUARTER_SECONDS)}, d.dimension, d.key, "
            f"{', '.join(counts)} FROM {rows} AS r CROSS JOIN LATERAL ({_KEYS}) "
            f"AS d(dimension, key) WHERE d.key IS NOT NULL GROUP BY 1, 2, 3")


def duration_rows(rows: str) -> str:
    """SELECT (hour, dimension, key, measure, bucket) once per duration of the facts rows
    `rows`."""
    day = _epoch_unit("r.published_at", HOUR_SECONDS)
    resolution = "CASE WHEN r.standing = 'resolved' THEN r.resolution_seconds END"
    minute = f"CAST(least(floor(r.reaction_seconds / 60), {HISTOGRAM_CAP}) AS integer)"
    return (
        f"SELECT {day} AS hour, d.dimension, d.key, 'reaction' AS measure, "
        f"{bucket_sql('r.reaction_seconds')} AS bucket FROM {rows} AS r "
        f"CROSS JOIN LATERAL ({_KEYS}) AS d(dimension, key) "
        f"WHERE d.key IS NOT NULL AND r.reaction_seconds IS NOT NULL "
        f"UNION ALL SELECT {day}, 'all', 'all', 'lag', {bucket_sql('r.lag_seconds')} "
        f"FROM {rows} AS r WHERE r.lag_seconds IS NOT NULL "
        f"UNION ALL SELECT {day}, 'all', 'all', 'resolution', {bucket_sql(resolution)} "
        f"FROM {rows} AS r WHERE {resolution} IS NOT NULL "
        f"UNION ALL SELECT {day}, 'tier', r.tier, 'minute', {minute} "
        f"FROM {rows} AS r WHERE r.reaction_seconds IS NOT NULL")


def duration_changes(rows: str, sign: str) -> str:
    """INSERT the duration counts of the facts rows `rows` per hour and per day,
    multiplied by `sign`."""
    keys = ", ".join(DURATION_KEYS)
    spans = ", ".join(f"({n})" for n in SPANS)
    return (f"INSERT INTO report_durations ({keys}, n) SELECT {keys}, {sign}count(*) "
            f"FROM (SELECT s.span, x.hour / s.span * s.span AS hour, x.dimension, x.key, "
            f"x.measure, x.bucket FROM ({duration_rows(rows)}) AS x "
            f"CROSS JOIN (VALUES {spans}) AS s(span)) AS y GROUP BY {keys}")


def changed(rows: str, other: str) -> str:
    """The rows of transition table `rows` whose watched columns differ in `other`."""
    differ = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in WATCHED)
    return f"(SELECT a.* FROM {rows} AS a JOIN {other} AS b USING (case_id) WHERE {differ})"


def trigger_bodies() -> dict[str, str]:
    """The statement triggers' bodies on case_facts, by the event they follow."""
    old, new = changed("old_rows", "new_rows"), changed("new_rows", "old_rows")
    return {
        "INSERT": count_changes("new_rows", "") + "; " + duration_changes("new_rows", ""),
        "UPDATE": "; ".join((count_changes(old, "-"), duration_changes(old, "-"),
                             count_changes(new, ""), duration_changes(new, ""))),
        "DELETE": count_changes("old_rows", "-") + "; " + duration_changes("old_rows", "-"),
    }


async def fold(conn: AsyncConnection, *, above: int = FOLD_ROWS) -> None:
    """Sum each roll-up's rows of changes into one row per key, if more than `above`
    rows of changes have piled up.

    Only the keys that have new rows are folded, with their folded row. `DELETE …
    RETURNING` feeds the sums: a change appended meanwhile is not deleted, and of two
    folds at once each sums only the rows it deleted, so every change counts once."""
    for table, keys, values in (("report_counts", COUNT_KEYS, COUNTS),
                                ("report_durations", DURATION_KEYS, ("n",))):
        fresh = (await conn.execute(text(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE NOT folded "
            f"LIMIT {above + 1}) AS x"))).scalar()
        if not fresh or fresh <= above:
            continue
        joined = ", ".join(keys)
        same = " AND ".join(f"t.{k} = k.{k}" for k in keys)
        sums = ", ".join(f"sum({v})" for v in values)
        await conn.execute(text(
            f"WITH k AS (SELECT DISTINCT {joined} FROM {table} WHERE NOT folded), "
            f"gone AS (DELETE FROM {table} AS t USING k WHERE {same} RETURNING t.*) "
            f"INSERT INTO {table} ({joined}, {', '.join(values)}, folded) "
            f"SELECT {joined}, {sums}, true FROM gone GROUP BY {joined} "
            f"HAVING {' OR '.join(f'sum({v}) <> 0' for v in values)}"))


def pending_sql() -> str:
    """SELECT (quarter, dimension, key, n): the cases of [:start, :end) still waiting for
    a first answer with the deadline at :now or later (`ix_case_facts_waiting`)."""
    return (f"SELECT {_epoch_unit('r.published_at', QUARTER_SECONDS)} AS quarter, "
            f"d.dimension, d.key, count(*) AS n FROM (SELECT * FROM case_facts "
            f"WHERE first_answer_at IS NULL AND dismissed_at IS NULL "
            f"AND response_due_at >= :now AND published_at >= :start "
            f"AND published_at < :end) AS r CROSS JOIN LATERAL ({_KEYS}) "
            f"AS d(dimension, key) WHERE d.key IS NOT NULL GROUP BY 1, 2, 3")


def durations_sql() -> str:
    """SELECT (dimension, key, measure, bucket, n): the duration counts of the UTC days
    of hours [:days_from, :days_to) and of the hours [:hours_from, :days_from) and
    [:days_to, :hours_to) from the roll-up, and of the facts published in [:start,
    :cut) and [:resume, :end) (parts of an hour)."""
    edges = ("(SELECT * FROM case_facts WHERE (published_at >= :start AND published_at < :cut)"
             " OR (published_at >= :resume AND published_at < :end))")
    return ("SELECT dimension, key, measure, bucket, sum(n) AS n FROM ("
            "SELECT dimension, key, measure, bucket, n FROM report_durations "
            "WHERE (span = 24 AND hour >= :days_from AND hour < :days_to) OR (span = 1 AND "
            "(hour >= :hours_from AND hour < :days_from OR hour >= :days_to "
            "AND hour < :hours_to)) "
            f"UNION ALL SELECT dimension, key, measure, bucket, 1 FROM ({duration_rows(edges)})"
            " AS e) AS x GROUP BY 1, 2, 3, 4")
