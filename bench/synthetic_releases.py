"""Release dynamics of the synthetic data: streams of the items released during the period,
in their first and second week after release, grouped by how many days before the data's
last event they were released.

    python bench/synthetic_releases.py --profile medium --seed 7

generates the profile into a temporary directory (seconds for small and medium; or reads
`--raw DIR`, a workspace's raw/) and prints, per item type and release group: the number of
items, mean streams in the first week, in the second, and in all. The groups released 14+
days before the end have whole weeks; an item's first week should not grow with how late it
was released (ingest/synthetic.py: a release buzz the same for every release day).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.synthetic import generate  # noqa: E402

QUERY = """
with items as (select * from read_parquet('{raw}/items.parquet')),
streams as (
  select coalesce(i.parent_id, i.item_id) as item_id, e.event_ts
  from read_parquet('{raw}/interactions.parquet') e join items i using (item_id)
  where e.event_type = 'stream'),
top_level as (select item_id, item_type, created_at from items where parent_id is null),
period as (select min(event_ts) as first_ts, max(event_ts) as last_ts from streams),
per_item as (
  select s.item_id,
    count(*) filter (where s.event_ts < t.created_at + interval 7 day) as week_1,
    count(*) filter (where s.event_ts >= t.created_at + interval 7 day
                     and s.event_ts < t.created_at + interval 14 day) as week_2,
    count(*) as all_streams
  from streams s join top_level t using (item_id) group by 1),
released as (
  select t.item_type, date_diff('day', t.created_at, p.last_ts) as days_before_end,
    coalesce(week_1, 0) as week_1, coalesce(week_2, 0) as week_2,
    coalesce(all_streams, 0) as all_streams
  from top_level t cross join period p left join per_item using (item_id)
  where t.created_at > p.first_ts)
select item_type,
  case when days_before_end < 14 then '0-13 (part weeks)' when days_before_end < 28 then '14-27'
       when days_before_end < 56 then '28-55' else '56+' end as released_days_before_end,
  count(*) as items, round(avg(week_1), 1) as week_1_streams,
  round(avg(week_2), 1) as week_2_streams, round(avg(all_streams), 1) as all_streams
from released group by all order by 1, 2
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="small")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--raw", type=Path, help="a raw/ directory to read instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.raw
        if raw is None:
            raw = Path(tmp)
            generate(args.profile, args.seed, raw)
        source = str(raw) if args.raw else f"--profile {args.profile} --seed {args.seed}"
        print(f"streams of items released during the period ({source})")
        print(duckdb.sql(QUERY.format(raw=raw)))


if __name__ == "__main__":
    main()
