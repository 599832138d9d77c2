{#- SQL that DuckDB and Spark spell differently (warehouse.engine: duckdb | spark). Models call
    these macros and stay one copy; adapter.dispatch picks `spark__<name>` on Spark and
    `default__<name>` (DuckDB's spelling) elsewhere. Lists are one-based in every macro. -#}

{% macro interval_days(n) -%}
  {#- `n` days (an integer expression) as an interval to add to or subtract from a timestamp. -#}
  {{ return(adapter.dispatch('interval_days', 'gfm')(n)) }}
{%- endmacro %}
{% macro default__interval_days(n) -%} to_days(cast({{ n }} as integer)) {%- endmacro %}
{% macro spark__interval_days(n) -%} make_dt_interval(cast({{ n }} as int)) {%- endmacro %}

{% macro epoch_seconds(ts) -%}
  {#- Seconds since 1970-01-01 of a naive UTC timestamp. -#}
  {{ return(adapter.dispatch('epoch_seconds', 'gfm')(ts)) }}
{%- endmacro %}
{% macro default__epoch_seconds(ts) -%} epoch({{ ts }}) {%- endmacro %}
{% macro spark__epoch_seconds(ts) -%} unix_timestamp({{ ts }}) {%- endmacro %}

{% macro parquet_file(path) -%}
  {#- A relation over one parquet file (a path relative to the workspace, or absolute). -#}
  {{ return(adapter.dispatch('parquet_file', 'gfm')(path)) }}
{%- endmacro %}
{% macro default__parquet_file(path) -%}
  read_parquet('{{ path | replace("'", "''") }}')
{%- endmacro %}
{% macro spark__parquet_file(path) -%}
  {#- Spark resolves a relative path against its own working directory: made absolute here. -#}
  {%- if not path.startswith('/') and '://' not in path -%}
    {%- set path = env_var('GFM_WORKSPACE_DIR') ~ '/' ~ path -%}
  {%- endif -%}
  parquet.`{{ path }}`
{%- endmacro %}

{% macro raw_table(name) -%}
  {#- The raw file `name` of the data contract: dbt-duckdb reads the source's
      external_location (_sources.yml); Spark reads the same file. -#}
  {{ return(adapter.dispatch('raw_table', 'gfm')(name)) }}
{%- endmacro %}
{% macro default__raw_table(name) -%} {{ source('raw', name) }} {%- endmacro %}
{% macro spark__raw_table(name) -%}
  {%- do source('raw', name) -%}  {#- keeps the lineage: the model still depends on the source -#}
  {{ parquet_file(var('raw_dir') ~ '/' ~ name ~ '.parquet') }}
{%- endmacro %}

{% macro unnest_list(expr) -%}
  {#- In a select list: one row per element of the list `expr`. -#}
  {{ return(adapter.dispatch('unnest_list', 'gfm')(expr)) }}
{%- endmacro %}
{% macro default__unnest_list(expr) -%} unnest({{ expr }}) {%- endmacro %}
{% macro spark__unnest_list(expr) -%} explode({{ expr }}) {%- endmacro %}

{% macro float_list(exprs) -%}
  {#- A list of 32-bit floats from a list of SQL expressions. -#}
  {{ return(adapter.dispatch('float_list', 'gfm')(exprs)) }}
{%- endmacro %}
{% macro default__float_list(exprs) -%} [{{ exprs | join(', ') }}]::FLOAT[] {%- endmacro %}
{% macro spark__float_list(exprs) -%}
  cast(array({{ exprs | join(', ') }}) as array<float>)
{%- endmacro %}

{% macro zero_vector(dim) -%}
  {#- A list of `dim` 32-bit zeros. -#}
  {{ return(adapter.dispatch('zero_vector', 'gfm')(dim)) }}
{%- endmacro %}
{% macro default__zero_vector(dim) -%}
  list_resize([]::FLOAT[], {{ dim }}, 0.0::FLOAT)
{%- endmacro %}
{% macro spark__zero_vector(dim) -%} array_repeat(cast(0.0 as float), {{ dim }}) {%- endmacro %}

{% macro empty_string_list() -%}
  {{ return(adapter.dispatch('empty_string_list', 'gfm')()) }}
{%- endmacro %}
{% macro default__empty_string_list() -%} []::VARCHAR[] {%- endmacro %}
{% macro spark__empty_string_list() -%} cast(array() as array<string>) {%- endmacro %}

{% macro list_element(expr, index) -%}
  {#- The `index`-th element (one-based) of a list; null past its end. -#}
  {{ return(adapter.dispatch('list_element', 'gfm')(expr, index)) }}
{%- endmacro %}
{% macro default__list_element(expr, index) -%} {{ expr }}[{{ index }}] {%- endmacro %}
{% macro spark__list_element(expr, index) -%}
  try_element_at({{ expr }}, {{ index }})
{%- endmacro %}

{% macro list_length(expr) -%}
  {{ return(adapter.dispatch('list_length', 'gfm')(expr)) }}
{%- endmacro %}
{% macro default__list_length(expr) -%} len({{ expr }}) {%- endmacro %}
{% macro spark__list_length(expr) -%} size({{ expr }}) {%- endmacro %}

{% macro list_filter(expr, name, predicate) -%}
  {#- The elements `name` of a list for which `predicate` (on `name`) holds, in order. -#}
  {{ return(adapter.dispatch('list_filter', 'gfm')(expr, name, predicate)) }}
{%- endmacro %}
{% macro default__list_filter(expr, name, predicate) -%}
  list_filter({{ expr }}, lambda {{ name }}: {{ predicate }})
{%- endmacro %}
{% macro spark__list_filter(expr, name, predicate) -%}
  filter({{ expr }}, {{ name }} -> {{ predicate }})
{%- endmacro %}

{% macro list_map(expr, name, value) -%}
  {#- `value` (an expression of `name`) for each element `name` of a list, in order. -#}
  {{ return(adapter.dispatch('list_map', 'gfm')(expr, name, value)) }}
{%- endmacro %}
{% macro default__list_map(expr, name, value) -%}
  list_transform({{ expr }}, lambda {{ name }}: {{ value }})
{%- endmacro %}
{% macro spark__list_map(expr, name, value) -%}
  transform({{ expr }}, {{ name }} -> {{ value }})
{%- endmacro %}

{% macro struct_of(fields) -%}
  {#- A struct whose fields are the columns named in `fields`, under the same names. -#}
  {{ return(adapter.dispatch('struct_of', 'gfm')(fields)) }}
{%- endmacro %}
{% macro default__struct_of(fields) -%}
  struct_pack({% for f in fields %}{{ f }} := {{ f }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}
{% macro spark__struct_of(fields) -%}
  named_struct({% for f in fields %}'{{ f }}', {{ f }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{% macro ordered_list(value, order_by) -%}
  {#- Aggregate: the group's `value`s as a list ordered by `order_by`, a list of
      [expression, "asc" | "desc"] pairs (the last pair should make the order total). -#}
  {{ return(adapter.dispatch('ordered_list', 'gfm')(value, order_by)) }}
{%- endmacro %}
{% macro default__ordered_list(value, order_by) -%}
  list({{ value }} order by {% for expr, direction in order_by -%}
    {{ expr }} {{ direction }}{{ ", " if not loop.last }}
  {%- endfor %})
{%- endmacro %}
{% macro spark__ordered_list(value, order_by) -%}
  {#- collect_list has no order: collect (keys, value) structs, sort them, keep the values. -#}
  transform(
    array_sort(
      collect_list(named_struct(
        {%- for expr, direction in order_by %}'k{{ loop.index }}', {{ expr }}, {% endfor -%}
        'v', {{ value }})),
      (l, r) -> case
        {%- for expr, direction in order_by %}
        {%- set before, after = ('>', '<') if direction == 'desc' else ('<', '>') %}
        when l.k{{ loop.index }} {{ before }} r.k{{ loop.index }} then -1
        when l.k{{ loop.index }} {{ after }} r.k{{ loop.index }} then 1
        {%- endfor %}
        else 0 end
    ),
    x -> x.v
  )
{%- endmacro %}

{% macro wide_integer() -%}
  {#- An integer type that sums many 64-bit hashes without overflow. -#}
  {{ return(adapter.dispatch('wide_integer', 'gfm')()) }}
{%- endmacro %}
{% macro default__wide_integer() -%} hugeint {%- endmacro %}
{% macro spark__wide_integer() -%} decimal(38, 0) {%- endmacro %}

{% macro per_dimension(template, dim) -%}
  {#- `template` with {i} set to 1..dim: one SQL expression per vector dimension. -#}
  {%- set out = [] -%}
  {%- for i in range(1, dim + 1) -%}
    {%- do out.append(template | replace('{i}', i | string)) -%}
  {%- endfor -%}
  {{ return(out) }}
{%- endmacro %}
