{#- The timeline (DESIGN.md, "Time is explicit everywhere") arrives as --vars from run_dbt. -#}

{%- macro timeline_ts(name) -%}
  {#- A timeline instant ('cutoff', 'graph_as_of', 'holdout_end') as a timestamp literal. -#}
  {%- set value = var(name) -%}
  timestamp '{{ value }}'
{%- endmacro -%}

{%- macro timeline_days(name) -%}
  {#- A day-count var (history_days, label_days, holdout_days) as an interval. -#}
  {{ interval_days(var(name) | int) }}
{%- endmacro -%}

{%- macro sql_string_list(values) -%}
  {#- A list var (e.g. edge_event_types) as a SQL list for `in (...)`; a string is split on commas. -#}
  {%- if values is string -%}
    {%- set values = values.split(',') -%}
  {%- endif -%}
  {%- if values | length == 0 -%}
    {{ exceptions.raise_compiler_error("an event-type list var is empty: give at least one event type") }}
  {%- endif -%}
  (
  {%- for value in values -%}
    '{{ value | trim | lower | replace("'", "''") }}'{% if not loop.last %}, {% endif %}
  {%- endfor -%}
  )
{%- endmacro -%}

{%- macro snapshot_spine() -%}
  {#- One row per daily snapshot d in [graph_as_of - early_label_days, cutoff]: snapshot_index
      (0 = graph_as_of, earlier days negative) and snapshot_ts, its midnight. -#}
    select
        snapshot_index,
        {{ timeline_ts('graph_as_of') }} + {{ interval_days('snapshot_index') }} as snapshot_ts

    from range(
        -{{ var('early_label_days') | int }}, {{ var('label_days') | int }} + 1
    ) as spine (snapshot_index)
{%- endmacro -%}
