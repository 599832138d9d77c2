{#- The timeline (DESIGN.md, "Time is explicit everywhere") arrives as --vars from run_dbt. -#}

{%- macro timeline_ts(name) -%}
  {#- A timeline instant ('cutoff', 'graph_as_of', 'holdout_end') as a DuckDB timestamp literal. -#}
  {%- set value = var(name) -%}
  timestamp '{{ value }}'
{%- endmacro -%}

{%- macro timeline_days(name) -%}
  {#- A day-count var (history_days, label_days, holdout_days) as an interval. -#}
  to_days(cast({{ var(name) | int }} as integer))
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
