"""The checker: name resolution and scoping, star expansion, types, output metadata, errors.

Queries are written as ADQL text (the parser is tested on its own); a few trees are built by
hand for what the grammar cannot say (negative TOP, WITH in a subquery, absurd nesting).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_service.adql import ast as a
from tap_service.adql import check, parse
from tap_service.adql.catalog import SimpleCatalog, UserFunction
from tap_service.adql.checked import CheckedQuery
from tap_service.adql.checker import OUTPUT_RANGE
from tap_service.adql.errors import AdqlError, AdqlNameError, AdqlSyntaxError, AdqlTypeError
from tap_service.adql.functions import parse_udf_signature, type_for_name
from tap_service.adql.types import ValueType

from .catalogs import CATALOG, CCD_VISIT, FORCED_SOURCE, OBJECT, OBJECTS_A, OBJECTS_B, UPLOAD


def ok(text: str, catalog: SimpleCatalog | None = CATALOG, **kw: object) -> CheckedQuery:
    return check(parse(text), catalog, text=text, **kw)


def fails(
    text: str, error: type[AdqlError], catalog: SimpleCatalog | None = CATALOG, **kw: object
) -> AdqlError:
    with pytest.raises(error) as info:
        check(parse(text), catalog, **kw)
    return info.value


def refs(checked: CheckedQuery) -> list[a.ColumnRef]:
    return [n for n in a.walk(checked.query) if isinstance(n, a.ColumnRef)]


def table_refs(checked: CheckedQuery) -> list[a.TableRef]:
    return [n for n in a.walk(checked.query) if isinstance(n, a.TableRef)]


def select_of(checked: CheckedQuery) -> a.SelectQuery:
    body = checked.query.body
    assert isinstance(body, a.SelectQuery)
    return body


def item_exprs(checked: CheckedQuery) -> list[a.Expr]:
    items = select_of(checked).items
    assert all(isinstance(i, a.SelectItem) for i in items)
    return [i.expr for i in items if isinstance(i, a.SelectItem)]


def names(checked: CheckedQuery) -> list[str]:
    return [c.name for c in checked.columns]


# =========================================================================== tables


class TestTables:
    def test_schema_qualified_table_binds_catalog_table_and_range_name(self) -> None:
        checked = ok("SELECT objectId FROM dp02_dc2_catalogs.Object")
        (ref,) = table_refs(checked)
        assert ref.binding is not None
        assert ref.binding.table is OBJECT
        assert ref.binding.range_name == "Object"
        assert checked.tables == (OBJECT,)

    def test_regular_names_match_case_insensitively(self) -> None:
        checked = ok("SELECT OBJECTID FROM DP02_DC2_CATALOGS.object")
        assert table_refs(checked)[0].binding.table is OBJECT
        assert refs(checked)[0].binding.info.name == "objectId"

    def test_delimited_table_name_is_case_sensitive(self) -> None:
        ok('SELECT * FROM demo."MixedCase"')
        ok("SELECT * FROM DEMO.mixedcase")
        fails('SELECT * FROM demo."mixedcase"', AdqlNameError)

    def test_delimited_names_match_exactly(self) -> None:
        ok('SELECT "objectId" FROM "dp02_dc2_catalogs"."Object"')
        err = fails('SELECT objectId FROM dp02_dc2_catalogs."object"', AdqlNameError)
        assert "Unknown table" in str(err)
        fails('SELECT "objectid" FROM dp02_dc2_catalogs.Object', AdqlNameError)

    def test_bare_table_name_resolves_when_unique_across_schemas(self) -> None:
        assert ok("SELECT * FROM ForcedSource").tables == (FORCED_SOURCE,)

    def test_bare_table_name_in_two_schemas_is_ambiguous(self) -> None:
        err = fails("SELECT id FROM objects", AdqlNameError)
        assert "Ambiguous table 'objects'" in str(err)
        assert set(err.suggestions) == {"survey_a.objects", "survey_b.objects"}

    def test_catalog_part_of_three_part_name_is_ignored(self) -> None:
        assert ok("SELECT objectId FROM anything.dp02_dc2_catalogs.Object").tables == (OBJECT,)

    def test_upload_table(self) -> None:
        checked = ok("SELECT m.ra FROM TAP_UPLOAD.mine AS m")
        binding = table_refs(checked)[0].binding
        assert binding is not None
        assert binding.table is UPLOAD
        assert binding.table.is_upload
        assert binding.range_name == "m"

    def test_unknown_table_suggests_close_names_with_position(self) -> None:
        err = fails("SELECT *\nFROM dp02_dc2_catalogs.Objct", AdqlNameError)
        assert (err.line, err.column) == (2, 6)
        assert err.name == "dp02_dc2_catalogs.Objct"
        assert "dp02_dc2_catalogs.Object" in err.suggestions
        text = str(err)
        assert text.startswith("Unknown table 'dp02_dc2_catalogs.Objct' (line 2, column 6)")
        assert "did you mean 'dp02_dc2_catalogs.Object'" in text

    def test_unaliased_tables_of_the_same_name_get_distinct_range_names(self) -> None:
        checked = ok("SELECT survey_a.objects.id FROM survey_a.objects, survey_b.objects")
        ranges = [r.binding.range_name for r in table_refs(checked)]
        assert ranges == ["objects", "objects_2"]
        assert refs(checked)[0].binding.range_name == "objects"
        assert checked.tables == (OBJECTS_A, OBJECTS_B)

    def test_generated_range_names_avoid_aliases_anywhere_in_the_query(self) -> None:
        checked = ok(
            "SELECT Object.objectId FROM dp02_dc2_catalogs.Object "
            "WHERE objectId IN (SELECT Object.objectId FROM ForcedSource AS Object)"
        )
        outer, inner = table_refs(checked)
        assert inner.binding.range_name == "Object"
        assert outer.binding.range_name == "Object_2"
        outer_ref = item_exprs(checked)[0]
        assert isinstance(outer_ref, a.ColumnRef)
        assert outer_ref.binding.range_name == "Object_2"

    def test_same_alias_twice_in_one_from_clause_is_an_error(self) -> None:
        err = fails("SELECT * FROM Object AS t, ForcedSource AS t", AdqlNameError)
        assert "'t'" in str(err)

    def test_tables_lists_catalog_tables_used_anywhere_once(self) -> None:
        checked = ok(
            "SELECT objectId FROM Object WHERE EXISTS "
            "(SELECT * FROM ForcedSource f JOIN CcdVisit c ON f.ccdVisitId = c.ccdVisitId "
            " WHERE f.objectId = Object.objectId) "
            "AND objectId IN (SELECT objectId FROM ForcedSource)"
        )
        assert checked.tables == (OBJECT, FORCED_SOURCE, CCD_VISIT)


# =========================================================================== columns


class TestColumns:
    def test_binding_uses_physical_column_name(self) -> None:
        (ref,) = refs(ok("SELECT coord_ra FROM Object"))
        assert ref.binding is not None
        assert ref.binding.range_name == "Object"
        assert ref.binding.column == "ra_phys"
        assert ref.binding.info.name == "coord_ra"

    def test_unknown_column_message_position_and_suggestions(self) -> None:
        err = fails("SELECT coord_raa FROM Object", AdqlNameError)
        assert str(err).startswith(
            "Unknown column 'coord_raa' (line 1, column 8); did you mean 'coord_ra'"
        )
        assert err.suggestions[0] == "coord_ra"
        assert len(err.suggestions) <= 3

    def test_unknown_column_without_close_names_has_no_suggestion(self) -> None:
        err = fails("SELECT zzzzzzzz FROM Object", AdqlNameError)
        assert "did you mean" not in str(err)

    def test_unqualified_column_in_two_tables_is_ambiguous_and_names_candidates(self) -> None:
        err = fails("SELECT objectId FROM Object, ForcedSource", AdqlNameError)
        text = str(err)
        assert "Ambiguous column 'objectId'" in text
        assert "'Object'" in text
        assert "'ForcedSource'" in text

    def test_qualified_by_table_schema_table_and_alias(self) -> None:
        checked = ok(
            "SELECT Object.objectId, dp02_dc2_catalogs.Object.coord_dec, f.psfFlux "
            "FROM Object, ForcedSource AS f"
        )
        ranges = [r.binding.range_name for r in refs(checked)]
        assert ranges == ["Object", "Object", "f"]

    def test_alias_hides_the_table_name(self) -> None:
        err = fails("SELECT Object.objectId FROM Object AS o", AdqlNameError)
        assert "Unknown table 'Object'" in str(err)
        assert err.suggestions == ("o.objectId",)
        assert "alias" in str(err)

    def test_unknown_column_of_a_known_table(self) -> None:
        err = fails("SELECT o.psfFlux FROM Object AS o", AdqlNameError)
        assert "in table 'o'" in str(err)

    def test_same_name_in_two_cases_prefers_exact_spelling(self) -> None:
        checked = ok('SELECT Flux, flux, "Weird Name" FROM demo.MixedCase')
        units = [c.unit for c in checked.columns]
        assert units == ["mJy", "Jy", None]
        assert names(checked) == ["Flux", "flux_2", "Weird Name"]

    def test_tap_schema_size_column_needs_quotes(self) -> None:
        checked = ok('SELECT "size" FROM TAP_SCHEMA.columns')
        assert checked.columns[0].name == "size"
        assert checked.columns[0].datatype == "int"

    def test_correlated_reference_binds_outer_range(self) -> None:
        checked = ok(
            "SELECT o.objectId FROM Object AS o WHERE EXISTS "
            "(SELECT * FROM ForcedSource AS f "
            " WHERE f.objectId = o.objectId AND psfFlux > g_psfFlux)"
        )
        bound = {(r.name.name, r.binding.range_name) for r in refs(checked)}
        assert ("psfFlux", "f") in bound
        assert ("g_psfFlux", "o") in bound

    def test_inner_alias_shadows_outer_alias(self) -> None:
        checked = ok(
            "SELECT t.objectId FROM Object AS t WHERE EXISTS "
            "(SELECT * FROM ForcedSource AS t WHERE t.psfFlux > 0)"
        )
        inner = [r for r in refs(checked) if r.name.name == "psfFlux"]
        assert inner[0].binding.info.unit == "nJy"

    def test_unqualified_name_in_subquery_prefers_inner_table(self) -> None:
        checked = ok(
            "SELECT objectId FROM Object WHERE objectId IN (SELECT objectId FROM ForcedSource)"
        )
        ranges = [r.binding.range_name for r in refs(checked)]
        assert ranges == ["Object", "Object", "ForcedSource"]

    def test_using_join_merges_the_column(self) -> None:
        checked = ok(
            "SELECT objectId, psfFlux FROM Object AS o JOIN ForcedSource AS f USING (objectId)"
        )
        assert refs(checked)[0].binding.range_name == "o"

    def test_using_join_star_lists_the_join_column_once(self) -> None:
        checked = ok("SELECT * FROM Object AS o JOIN ForcedSource AS f USING (objectId)")
        assert names(checked).count("objectId") == 1
        assert len(checked.columns) == len(OBJECT.columns) + len(FORCED_SOURCE.columns) - 1

    def test_right_join_using_takes_the_right_side(self) -> None:
        checked = ok(
            "SELECT objectId FROM Object AS o RIGHT JOIN ForcedSource AS f USING (objectId)"
        )
        assert refs(checked)[0].binding.range_name == "f"

    def test_natural_join_merges_common_columns(self) -> None:
        checked = ok("SELECT ccdVisitId, band FROM ForcedSource NATURAL JOIN CcdVisit")
        ranges = [r.binding.range_name for r in refs(checked)]
        assert ranges == ["ForcedSource", "ForcedSource"]

    def test_using_column_missing_on_one_side(self) -> None:
        err = fails("SELECT * FROM Object JOIN CcdVisit USING (objectId)", AdqlNameError)
        assert "USING" in str(err)

    def test_join_on_condition_is_checked(self) -> None:
        err = fails(
            "SELECT * FROM Object AS o JOIN ForcedSource AS f ON o.nope = f.objectId", AdqlNameError
        )
        assert "nope" in str(err)

    def test_natural_join_with_on_is_refused(self) -> None:
        tree = parse("SELECT * FROM Object NATURAL JOIN ForcedSource")
        join = select_of_tree(tree).from_[0]
        assert isinstance(join, a.Join)
        cond = parse("SELECT * FROM Object WHERE 1 = 1")
        where = select_of_tree(cond).where
        assert where is not None
        bad = replace_body(
            tree, from_=(a.Join(left=join.left, right=join.right, natural=True, condition=where),)
        )
        with pytest.raises(AdqlSyntaxError):
            check(bad, CATALOG)


def select_of_tree(q: a.Query) -> a.SelectQuery:
    assert isinstance(q.body, a.SelectQuery)
    return q.body


def replace_body(q: a.Query, **changes: object) -> a.Query:
    import dataclasses

    return dataclasses.replace(q, body=dataclasses.replace(select_of_tree(q), **changes))


# =========================================================================== stars


class TestStars:
    def test_star_expands_to_bound_columns_in_catalog_order(self) -> None:
        checked = ok("SELECT * FROM dp02_dc2_catalogs.Object")
        assert not any(isinstance(n, a.Star) for n in a.walk(checked.query))
        assert names(checked) == [c.name for c in OBJECT.columns]
        for ref in refs(checked):
            assert ref.binding is not None
            assert ref.binding.range_name == "Object"
            assert ref.type_ == ref.binding.info.value_type

    def test_qualified_star_expands_one_table(self) -> None:
        checked = ok("SELECT f.*, o.objectId FROM Object AS o, ForcedSource AS f")
        assert names(checked) == [c.name for c in FORCED_SOURCE.columns] + ["objectId_2"]

    def test_qualified_star_of_unknown_table(self) -> None:
        err = fails("SELECT x.* FROM Object AS o", AdqlNameError)
        assert "x.*" in str(err)

    def test_star_over_subquery_uses_its_output_names(self) -> None:
        checked = ok("SELECT * FROM (SELECT objectId, coord_ra AS ra FROM Object) AS q")
        assert names(checked) == ["objectId", "ra"]
        columns = [r.binding.column for r in refs(checked) if r.binding.range_name == "q"]
        assert columns == ["objectId", "ra"]

    def test_every_select_item_carries_its_output_name(self) -> None:
        checked = ok(
            "SELECT objectId, coord_ra + 1, COUNT(*) AS n FROM Object GROUP BY objectId, coord_ra"
        )
        items = select_of(checked).items
        aliases = [i.alias.name for i in items if isinstance(i, a.SelectItem) and i.alias]
        assert aliases == names(checked) == ["objectId", "col_2", "n"]


# =========================================================================== queries


class TestQueryStructure:
    def test_derived_table_columns_bind_to_output_names(self) -> None:
        checked = ok(
            "SELECT q.n, q.coord_ra FROM "
            "(SELECT COUNT(*) AS n, coord_ra FROM Object GROUP BY coord_ra) AS q WHERE q.n > 1"
        )
        outer = [r for r in refs(checked) if r.binding.range_name == "q"]
        assert {r.binding.column for r in outer} == {"n", "coord_ra"}
        assert checked.columns[1].unit == "deg"
        assert checked.columns[1].source is OBJECT.columns[1]
        assert checked.columns[1].source_table is OBJECT

    def test_derived_table_duplicate_outputs_are_renamed_and_addressable(self) -> None:
        checked = ok(
            "SELECT q.objectId_2 FROM (SELECT o.objectId, f.objectId FROM Object AS o "
            "JOIN ForcedSource AS f ON o.objectId = f.objectId) AS q"
        )
        assert refs(checked)[0].binding.column == "objectId_2"

    def test_cte_resolves_with_null_table(self) -> None:
        checked = ok(
            "WITH bright AS (SELECT objectId, g_psfFlux AS flux FROM Object WHERE g_psfFlux > 10) "
            "SELECT b.flux, bright2.objectId FROM bright AS b, bright AS bright2"
        )
        outer = [t for t in table_refs(checked) if t.name[0].name == "bright"]
        assert [t.binding.table for t in outer] == [None, None]
        assert [t.binding.range_name for t in outer] == ["b", "bright2"]
        assert checked.columns[0].unit == "nJy"
        assert checked.tables == (OBJECT,)

    def test_unaliased_cte_references_get_distinct_range_names(self) -> None:
        checked = ok("WITH w AS (SELECT objectId FROM Object) SELECT w.objectId FROM w")
        cte_ref = next(t for t in table_refs(checked) if t.name[0].name == "w")
        assert cte_ref.binding.range_name == "w"

    def test_cte_visible_in_subqueries(self) -> None:
        ok(
            "WITH w AS (SELECT objectId FROM Object) "
            "SELECT * FROM ForcedSource WHERE objectId IN (SELECT objectId FROM w)"
        )

    def test_with_inside_a_subquery_is_refused(self) -> None:
        inner = parse("WITH w AS (SELECT objectId FROM Object) SELECT objectId FROM w")
        outer = parse("SELECT q.objectId FROM (SELECT objectId FROM Object) AS q")
        derived = select_of_tree(outer).from_[0]
        assert isinstance(derived, a.DerivedTable)
        tree = replace_body(outer, from_=(a.DerivedTable(query=inner, alias=derived.alias),))
        with pytest.raises(AdqlSyntaxError, match="WITH"):
            check(tree, CATALOG)

    def test_order_by_alias_position_and_column(self) -> None:
        checked = ok("SELECT coord_ra AS r, g_psfFlux FROM Object ORDER BY r DESC, 2, coord_dec")
        r, pos, col = (o.expr for o in checked.query.order_by)
        assert isinstance(r, a.ColumnRef)
        assert r.binding is not None
        assert r.binding.range_name == OUTPUT_RANGE
        assert r.binding.column == "r"
        assert r.type_ == ValueType("double")
        assert isinstance(pos, a.NumericLiteral)
        assert pos.type_ == ValueType("float")
        assert isinstance(col, a.ColumnRef)
        assert col.binding.range_name == "Object"

    def test_order_by_position_out_of_range(self) -> None:
        err = fails("SELECT objectId FROM Object ORDER BY 2", AdqlTypeError)
        assert "1 columns" in str(err)
        fails("SELECT objectId FROM Object ORDER BY 0", AdqlTypeError)
        # 5000 digits are beyond a DOUBLE: the parser refuses the number itself.
        fails("SELECT objectId FROM Object ORDER BY " + "9" * 5000, AdqlSyntaxError)

    def test_order_by_expression_may_use_select_alias(self) -> None:
        checked = ok("SELECT COUNT(*) AS n, tract FROM Object GROUP BY tract ORDER BY n * 2")
        (item,) = checked.query.order_by
        inner = [r for r in a.walk(item) if isinstance(r, a.ColumnRef)]
        assert inner[0].binding is not None
        assert inner[0].binding.range_name == OUTPUT_RANGE

    def test_group_by_select_alias(self) -> None:
        checked = ok("SELECT ROUND(coord_ra) AS band, COUNT(*) FROM Object GROUP BY band")
        (g,) = select_of(checked).group_by
        assert isinstance(g, a.ColumnRef)
        assert g.binding.range_name == OUTPUT_RANGE

    def test_group_by_prefers_input_column_over_alias(self) -> None:
        checked = ok(
            "SELECT tract AS coord_ra, MAX(coord_dec) FROM Object GROUP BY coord_ra, tract"
        )
        g = select_of(checked).group_by[0]
        assert isinstance(g, a.ColumnRef)
        assert g.binding.column == "ra_phys"

    def test_set_operation_column_counts_must_match(self) -> None:
        err = fails(
            "SELECT objectId, coord_ra FROM Object UNION SELECT objectId FROM ForcedSource",
            AdqlTypeError,
        )
        assert "UNION" in str(err)

    def test_set_operation_column_kinds_must_match(self) -> None:
        fails("SELECT objectId FROM Object UNION SELECT band FROM CcdVisit", AdqlTypeError)

    def test_set_operation_order_by_names_output(self) -> None:
        checked = ok(
            "SELECT objectId AS id FROM Object UNION SELECT objectId FROM ForcedSource ORDER BY id"
        )
        (item,) = checked.query.order_by
        assert isinstance(item.expr, a.ColumnRef)
        assert item.expr.binding.range_name == OUTPUT_RANGE
        assert names(checked) == ["id"]
        assert checked.columns[0].source is None  # two different columns feed it

    def test_set_operation_types_combine_both_sides(self) -> None:
        checked = ok("SELECT tract FROM Object UNION ALL SELECT psfFlux FROM ForcedSource")
        assert checked.columns[0].datatype == "double"
        checked = ok("SELECT NULL FROM Object EXCEPT SELECT band FROM CcdVisit")
        assert (checked.columns[0].datatype, checked.columns[0].arraysize) == ("char", "*")

    def test_set_operation_order_by_unknown_output(self) -> None:
        err = fails(
            "SELECT objectId FROM Object UNION SELECT objectId FROM ForcedSource ORDER BY coord_ra",
            AdqlNameError,
        )
        assert "ORDER BY" in str(err)

    def test_scalar_subquery_must_have_one_column(self) -> None:
        fails(
            "SELECT (SELECT objectId, tract FROM Object) FROM ForcedSource",
            AdqlTypeError,
        )

    def test_in_subquery_must_have_one_column(self) -> None:
        fails(
            "SELECT * FROM ForcedSource WHERE objectId IN (SELECT objectId, tract FROM Object)",
            AdqlTypeError,
        )

    def test_negative_top_and_offset_are_refused(self) -> None:
        tree = parse("SELECT TOP 5 objectId FROM Object")
        with pytest.raises(AdqlSyntaxError, match="TOP"):
            check(replace_body(tree, top=-1), CATALOG)
        import dataclasses

        with pytest.raises(AdqlSyntaxError, match="OFFSET"):
            check(dataclasses.replace(tree, offset=-3), CATALOG)


# =========================================================================== types


def expr_type(text: str, catalog: SimpleCatalog | None = CATALOG) -> ValueType | None:
    return item_exprs(ok(f"SELECT {text} FROM dp02_dc2_catalogs.Object", catalog))[0].type_


class TestTypes:
    def test_every_expression_is_typed(self) -> None:
        checked = ok(
            "SELECT o.objectId, -coord_ra * 2 + 1, LOWER(f.band), "
            "DISTANCE(POINT('ICRS', coord_ra, coord_dec), POINT(1, 2)), "
            "CAST(tract AS DOUBLE PRECISION), COALESCE(NULL, 1) "
            "FROM Object AS o JOIN ForcedSource AS f USING (objectId) "
            "WHERE 1 = CONTAINS(POINT(coord_ra, coord_dec), CIRCLE(10, 20, 1.0 / 60)) "
            "AND f.band IN ('g', 'r') AND (SELECT MAX(psfFlux) FROM ForcedSource) > 1"
        )
        untyped = [n for n in a.walk(checked.query) if isinstance(n, a.Expr) and n.type_ is None]
        assert untyped == []

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1", ValueType("int")),
            ("3000000000", ValueType("long")),
            ("1" + "0" * 30, ValueType("double")),
            ("1" + "0" * 300, ValueType("double")),
            ("1.5", ValueType("double")),
            ("'a'", ValueType("char", "*")),
            ("objectId + 1", ValueType("long")),
            ("tract / 2", ValueType("double")),
            ("g_psfFlux * 2", ValueType("double")),
            ("-tract", ValueType("long")),
            ("'a' || 1", ValueType("char", "*")),
            ("ABS(tract)", ValueType("long")),
            ("ROUND(coord_ra, 2)", ValueType("double")),
            ("MOD(tract, 3)", ValueType("long")),
            ("POINT('ICRS', 1, 2)", ValueType("double", "2", "point")),
            ("CIRCLE(1, 2, 3)", ValueType("double", "3", "circle")),
            ("POLYGON(1, 2, 3, 4, 5, 6)", ValueType("double", "*", "polygon")),
            ("BOX(1, 2, 3, 4)", ValueType("double", "*", "polygon")),
            ("CENTROID(CIRCLE(1, 2, 3))", ValueType("double", "2", "point")),
            ("CONTAINS(POINT(1, 2), CIRCLE(1, 2, 3))", ValueType("int")),
            ("COORDSYS(POINT(1, 2))", ValueType("char", "*")),
            ("CAST(coord_ra AS INTEGER)", ValueType("int")),
            ("CAST(objectId AS VARCHAR(20))", ValueType("char", "20*")),
            ("CAST(objectId AS CHAR(4))", ValueType("char", "4")),
            ("COUNT(*)", ValueType("long")),
            ("SUM(tract)", ValueType("long")),
            ("SUM(g_psfFlux)", ValueType("double")),
            ("MAX(g_psfFlux)", ValueType("float")),
            ("ivo_healpix_index(5, coord_ra, coord_dec)", ValueType("long")),
            ("mystery(1, 2, 3, 4)", ValueType(None)),
            ("NULL", ValueType(None)),
        ],
    )
    def test_inferred_type(self, text: str, expected: ValueType) -> None:
        assert expr_type(text) == expected

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("SELECT POINT(1, 2) || 'a' FROM Object", "'||'"),
            ("SELECT 'a' || CIRCLE(1, 2, 3) FROM Object", "'||'"),
            ("SELECT * FROM Object WHERE 1 = CONTAINS(coord_ra, coord_dec)", "CONTAINS"),
            ("SELECT * FROM Object WHERE 1 = INTERSECTS(1, CIRCLE(1, 2, 3))", "INTERSECTS"),
            ("SELECT COORD1(fov) FROM demo.MixedCase", "COORD1"),
            ("SELECT COORD2(coord_ra) FROM Object", "COORD2"),
            ("SELECT AREA(coord_ra) FROM Object", "AREA"),
            ("SELECT DISTANCE(fov, POINT(1, 2)) FROM demo.MixedCase", "DISTANCE"),
            ("SELECT band + 1 FROM CcdVisit", "'+'"),
            ("SELECT -band FROM CcdVisit", "Sign"),
            ("SELECT POINT(1, 2) * 2 FROM Object", "'*'"),
            ("SELECT * FROM Object WHERE tract LIKE 'a%'", "LIKE"),
            ("SELECT * FROM Object WHERE coord_ra ILIKE 'a%'", "ILIKE"),
            ("SELECT * FROM CcdVisit WHERE band = 3 + 4", "compare"),
            ("SELECT * FROM CcdVisit WHERE obsStart > 5", "compare"),
            ("SELECT * FROM CcdVisit WHERE POINT(1, 2) = 'x'", "compare"),
            ("SELECT * FROM CcdVisit WHERE band BETWEEN 1 AND 2", "compare"),
            ("SELECT * FROM CcdVisit WHERE band IN (1, 2)", "compare"),
            ("SELECT LOWER(tract) FROM Object", "LOWER"),
            ("SELECT SQRT(band) FROM CcdVisit", "SQRT"),
            ("SELECT ROUND(coord_ra, 1.5) FROM Object", "ROUND"),
            ("SELECT AVG(band) FROM CcdVisit", "AVG"),
            ("SELECT MAX(POINT(ra, dec)) FROM CcdVisit", "MAX"),
            ("SELECT CAST(POINT(1, 2) AS INTEGER) FROM Object", "CAST"),
            ("SELECT CAST(tract AS POINT) FROM Object", "CAST"),
            ("SELECT COALESCE(band, 1) FROM CcdVisit", "compare"),
            ("SELECT * FROM Object WHERE COUNT(*) > 1", "WHERE"),
            ("SELECT MAX(COUNT(*)) FROM Object", "aggregate"),
            ("SELECT * FROM Object GROUP BY COUNT(*)", "GROUP BY"),
            ("SELECT CIRCLE(fov, 1) FROM demo.MixedCase", "center of CIRCLE"),
            ("SELECT ivo_healpix_index(5, coord_ra) FROM Object", "3 arguments"),
        ],
    )
    def test_type_errors(self, text: str, fragment: str) -> None:
        err = fails(text, AdqlTypeError)
        assert fragment in str(err)
        assert err.line == 1
        assert err.column is not None

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT '30' * 2 FROM Object",
            "SELECT tract || 'x' || 1.5 FROM Object",
            "SELECT * FROM Object WHERE objectId = '123'",
            "SELECT * FROM CcdVisit WHERE obsStart > '2020-01-01T00:00:00'",
            "SELECT * FROM CcdVisit WHERE obsStart BETWEEN band AND band",
            "SELECT * FROM Object WHERE detect_isPrimary = 1",
            "SELECT * FROM legacy.untyped WHERE anything = 1 OR"
            " anything = 'x' OR anything LIKE 'y'",
            "SELECT * FROM legacy.untyped WHERE 1 = CONTAINS(pos, CIRCLE(1, 2, 3))",
            "SELECT * FROM demo.MixedCase WHERE 1 = CONTAINS(center, s_region)",
            "SELECT DISTANCE(center, POINT(1, 2)), COORD1(s_region), AREA(fov) FROM demo.MixedCase",
            "SELECT CIRCLE(center, 1), CIRCLE(CENTROID(fov), 2) FROM demo.MixedCase",
            "SELECT * FROM Object WHERE 1 = CONTAINS(POINT(coord_ra, coord_dec), NULL)",
            "SELECT DISTANCE(1, 2, 3, 4) FROM Object",
            "SELECT * FROM Object WHERE POINT(1, 2) = CIRCLE(1, 2, 3)",
            "SELECT * FROM Object WHERE mystery(coord_ra) = 'anything'",
            "SELECT COUNT(DISTINCT band), MIN(band) FROM CcdVisit",
        ],
    )
    def test_accepted_mixtures(self, text: str) -> None:
        ok(text)

    def test_builtin_arity_is_checked(self) -> None:
        for name, args in [("SQRT", "1, 2"), ("ATAN2", "1"), ("PI", "1"), ("COALESCE", "")]:
            tree = parse("SELECT ABS(1) FROM Object")
            bad = replace_body(
                tree,
                items=(
                    a.SelectItem(
                        expr=a.FunctionCall(
                            name=name,
                            args=tuple(
                                a.NumericLiteral(text=x.strip()) for x in args.split(",") if x
                            ),
                            pos=a.Position(line=1, column=8),
                        )
                    ),
                ),
            )
            with pytest.raises(AdqlTypeError, match=name) as info:
                check(bad, CATALOG)
            assert info.value.column == 8


# =========================================================================== functions


class TestFunctions:
    def test_undeclared_function_with_catalog_is_a_name_error_with_suggestions(self) -> None:
        err = fails("SELECT ivo_healpix_indx(5, coord_ra, coord_dec) FROM Object", AdqlNameError)
        assert "Unknown function 'ivo_healpix_indx'" in str(err)
        assert err.suggestions[0] == "ivo_healpix_index"

    def test_misspelled_builtin_is_suggested(self) -> None:
        err = fails("SELECT LOWR(band) FROM CcdVisit", AdqlNameError)
        assert "LOWER" in err.suggestions

    def test_udf_names_match_case_insensitively(self) -> None:
        assert expr_type("IVO_HEALPIX_INDEX(5, coord_ra, coord_dec)") == ValueType("long")

    def test_without_catalog_any_function_is_accepted_with_unknown_type(self) -> None:
        assert expr_type("ivo_anything(1)", None) == ValueType(None)

    def test_declared_functions_without_catalog_make_others_errors(self) -> None:
        hpx = parse_udf_signature("ivo_healpix_index(o INTEGER, ra DOUBLE, dec DOUBLE) -> BIGINT")
        ok("SELECT ivo_healpix_index(1, ra, dec) FROM t", None, functions=[hpx])
        fails("SELECT ivo_other(1) FROM t", AdqlNameError, None, functions=[hpx])
        fails("SELECT ivo_other(1) FROM t", AdqlNameError, None, functions=[])

    def test_parse_udf_signature(self) -> None:
        f = parse_udf_signature("ESO_DATEADD_SEC(seconds INTEGER, date TIMESTAMP) -> TIMESTAMP")
        assert f.name == "ESO_DATEADD_SEC"
        assert f.arg_count == 2
        assert f.returns.is_timestamp
        assert parse_udf_signature("ivo_now() -> DOUBLE PRECISION").arg_count == 0
        assert parse_udf_signature("f(x CHAR(3)) -> VARCHAR(8)").returns == ValueType("char", "8*")
        with pytest.raises(AdqlSyntaxError):
            parse_udf_signature("not a signature")
        with pytest.raises(AdqlSyntaxError):
            parse_udf_signature("f(x INTEGER) -> SOMETHING")

    def test_type_names(self) -> None:
        assert type_for_name("double   precision") == ValueType("double")
        assert type_for_name("NATIONAL CHAR", 3) == ValueType("char", "3")
        assert type_for_name("BLOB") is None

    def test_catalog_udf_declared_by_catalog(self) -> None:
        catalog = SimpleCatalog(
            table_list=(OBJECT,),
            function_list=(
                UserFunction(
                    name="scisql_fluxToAbMag",
                    signature="scisql_fluxToAbMag(flux DOUBLE) -> DOUBLE",
                    returns=ValueType("double"),
                    arg_count=1,
                ),
            ),
        )
        checked = ok("SELECT scisql_fluxToAbMag(g_psfFlux) AS mag FROM Object", catalog)
        assert checked.columns[0].datatype == "double"
        assert names(checked) == ["mag"]


# =========================================================================== metadata


class TestOutputMetadata:
    def test_plain_column_copies_catalog_metadata_and_source(self) -> None:
        (col,) = ok("SELECT o.coord_ra FROM Object AS o").columns
        ra = OBJECT.columns[1]
        assert (col.name, col.datatype, col.unit, col.ucd, col.description) == (
            "coord_ra",
            "double",
            "deg",
            "pos.eq.ra",
            "Right ascension",
        )
        assert col.source is ra
        assert col.source_table is OBJECT

    def test_upload_column_source_table_is_the_upload(self) -> None:
        (col,) = ok("SELECT ra FROM TAP_UPLOAD.mine").columns
        assert col.source_table is UPLOAD
        assert col.unit == "deg"

    def test_expression_names_and_uniqueness(self) -> None:
        checked = ok(
            "SELECT objectId, objectId, OBJECTID, COUNT(*), count(tract), "
            "DISTANCE(POINT(coord_ra, coord_dec), POINT(0, 0)), AVG(g_psfFlux), "
            "coord_ra + 1, POINT(1, 2), g_psfFlux AS flux, tract AS col_8 "
            "FROM Object GROUP BY objectId, coord_ra, coord_dec, g_psfFlux, tract"
        )
        assert names(checked) == [
            "objectId",
            "objectId_2",
            "objectId_3",
            "count",
            "count_2",
            "distance",
            "avg",
            "col_8",
            "point",
            "flux",
            "col_8_2",
        ]

    def test_aggregate_and_function_metadata(self) -> None:
        checked = ok(
            "SELECT COUNT(*), AVG(g_psfFlux), MIN(coord_ra), MAX(coord_dec), SUM(g_psfFlux), "
            "DISTANCE(POINT(coord_ra, coord_dec), POINT(0, 0)), AREA(CIRCLE(1, 2, 3)), "
            "CIRCLE(1, 2, 3), LOWER('X'), IN_UNIT(coord_ra, 'arcsec'), ABS(g_psfFlux), "
            "DEGREES(1), COORD1(POINT(1, 2)) FROM Object "
            "GROUP BY coord_ra, coord_dec, g_psfFlux"
        )
        meta = [(c.datatype, c.arraysize, c.xtype, c.unit, c.ucd) for c in checked.columns]
        assert meta == [
            ("long", None, None, None, None),
            ("double", None, None, "nJy", None),
            ("double", None, None, "deg", "pos.eq.ra"),
            ("double", None, None, "deg", "pos.eq.dec"),
            ("double", None, None, "nJy", None),
            ("double", None, None, "deg", None),
            ("double", None, None, "deg**2", None),
            ("double", "3", "circle", None, None),
            ("char", "*", None, None, None),
            ("double", None, None, "arcsec", None),
            ("double", None, None, "nJy", None),
            ("double", None, None, "deg", None),
            ("double", None, None, "deg", None),
        ]
        assert all(c.source is None for c in checked.columns)

    def test_group_by_also_by_expression_alias_and_position(self) -> None:
        ok("SELECT ROUND(coord_ra, 1), COUNT(*) FROM Object GROUP BY ROUND(coord_ra, 1)")
        ok("SELECT ROUND(coord_ra, 1) AS r, COUNT(*) FROM Object GROUP BY r")
        ok("SELECT ROUND(coord_ra, 1), COUNT(*) FROM Object GROUP BY 1")
        ok("SELECT coord_ra + 1, MAX(tract) FROM Object GROUP BY coord_ra")
        ok("SELECT 1, 'x', COUNT(*) FROM Object")
        ok(
            "SELECT o.tract FROM Object AS o GROUP BY o.tract HAVING "
            "COUNT(*) > (SELECT COUNT(*) FROM ForcedSource AS f WHERE f.objectId = o.tract)"
        )

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT coord_ra, COUNT(*) FROM Object",
            "SELECT coord_ra FROM Object GROUP BY tract",
            "SELECT ROUND(coord_ra, 2), COUNT(*) FROM Object GROUP BY ROUND(coord_ra, 1)",
            "SELECT tract FROM Object HAVING COUNT(*) > 1",
        ],
    )
    def test_ungrouped_columns_are_refused(self, text: str) -> None:
        err = fails(text, AdqlTypeError)
        assert "GROUP BY" in str(err)

    def test_text_is_kept(self) -> None:
        text = "SELECT objectId FROM Object"
        assert ok(text).text == text
        assert check(parse(text), CATALOG).text is None


# =========================================================================== no catalog


class TestWithoutCatalog:
    def test_any_table_and_column_is_accepted_with_unknown_type(self) -> None:
        checked = ok("SELECT s.x, y FROM sch.table1 AS s, other WHERE z > 1", None)
        assert [c.datatype for c in checked.columns] == [None, None]
        assert [t.name for t in checked.tables] == ["table1", "other"]
        assert all(r.binding is not None for r in refs(checked))

    def test_schema_qualified_column_of_unqualified_unknown_table(self) -> None:
        (ref,) = refs(ok("SELECT sch.t.x FROM t", None))
        assert ref.binding is not None
        assert ref.binding.range_name == "t"

    def test_unknown_qualifier_binds_to_an_unknown_table_of_that_name(self) -> None:
        (ref,) = refs(ok("SELECT q.x FROM t AS s", None))
        assert ref.binding is not None
        assert (ref.binding.range_name, ref.binding.column) == ("q", "x")
        checked = ok("SELECT q.* FROM t AS s", None)
        (star,) = select_of(checked).items
        assert isinstance(star, a.Star)
        assert [i.name for i in star.qualifier] == ["q"]

    def test_star_over_unknown_table_stays_qualified(self) -> None:
        checked = ok("SELECT * FROM t AS s, (SELECT 1 AS one FROM u) AS q", None)
        items = select_of(checked).items
        assert isinstance(items[0], a.Star)
        assert items[0].qualifier[0].name == "s"
        assert isinstance(items[1], a.SelectItem)
        assert names(checked) == ["one"]

    def test_derived_table_over_unknown_table_accepts_any_column(self) -> None:
        ok("SELECT q.anything FROM (SELECT * FROM t) AS q", None)

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT POINT('ICRS', 1, 2) || 'a' FROM y",
            "SELECT 'a' || CIRCLE('ICRS', 1, 2, 3) FROM y",
            "SELECT POINT('ICRS', 1, 2) + 1 FROM y",
            "SELECT -AREA(x) * CENTROID(x) FROM y",
            "SELECT * FROM y WHERE 1 = CONTAINS(ABS(1), CIRCLE('ICRS', 1, 2, 3))",
            "SELECT x FROM y WHERE 'a' LIKE ABS(3)",
            "SELECT LOWER(POINT('ICRS', 1, 2)) FROM y",
            "SELECT CENTROID(1 + 2) FROM y",
            "SELECT ROUND(x, 2.5) FROM y",
        ],
    )
    def test_typed_function_or_operator_of_the_wrong_kind_is_an_error(self, text: str) -> None:
        """The BNF's typed positions admit a value_expression_primary or a function of their
        kind: a geometry function is not a character_primary, a numeric one no geometry."""
        fails(text, AdqlTypeError, None)

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT * FROM y WHERE 1 = CONTAINS(1, 2)",
            "SELECT x FROM y WHERE 'a' LIKE 3",
            "SELECT CAST(x AS POINT) || 'a', AREA(COALESCE(x, 1)), ABS('1') FROM y",
            "SELECT CENTROID(MAX(x)), SUM(POINT('ICRS', 1, 2)) FROM y",
            "SELECT POINT('ICRS', 1, 2) FROM y WHERE POINT('ICRS', 1, 2) = 'a' || 'b'",
            "SELECT 1 FROM y UNION SELECT POINT('ICRS', 1, 2) FROM z",
        ],
    )
    def test_primaries_stand_in_any_typed_position_as_the_bnf_says(self, text: str) -> None:
        ok(text, None)


class TestModes:
    """The same query, accepted without a catalog (the BNF allows it, as the lyonetia corpus
    expects) and rejected with one (the SQL-92 rules the service keeps)."""

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT q.coord_ra FROM Object",
            "SELECT q.* FROM Object",
            "SELECT Object.coord_ra FROM Object AS o",
            "SELECT Object.* FROM Object AS o",
            "SELECT o.objectId FROM Object AS o WHERE other.Object.tract = 1",
        ],
    )
    def test_qualifier_naming_no_table_of_from(self, text: str) -> None:
        ok(text, None)
        fails(text, AdqlNameError)

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT coord_ra FROM Object GROUP BY tract",
            "SELECT coord_ra FROM Object GROUP BY tract, patch",
            "SELECT coord_ra FROM Object GROUP BY tract HAVING coord_dec = 1 AND 7 < patch",
            "SELECT coord_ra, COUNT(*) FROM Object",
        ],
    )
    def test_column_neither_grouped_nor_aggregated(self, text: str) -> None:
        ok(text, None)
        err = fails(text, AdqlTypeError)
        assert "GROUP BY" in str(err)

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT objectId FROM Object WHERE CENTROID(3) = coord_ra",
            "SELECT * FROM Object WHERE 1 = CONTAINS("
            "POINT('ICRS', coord_ra, 'sy'), CIRCLE('ICRS', coord_ra, coord_dec, 1))",
            "SELECT objectId FROM Object WHERE CENTROID(COUNT(*)) = coord_ra",
            "SELECT objectId FROM Object WHERE 5 + 9 > 'gaga' || 'bla'",
            "SELECT AVG(band) FROM CcdVisit",
            "SELECT CAST(coord_ra AS POINT) FROM Object",
        ],
    )
    def test_operand_types_the_bnf_does_not_constrain(self, text: str) -> None:
        ok(text, None)
        fails(text, AdqlTypeError)


# =========================================================================== robustness


def test_hand_built_tree_without_positions() -> None:
    """Trees from other producers (rewrites, tests) carry no positions: errors still work."""
    query = a.Query(
        body=a.SelectQuery(
            items=(a.SelectItem(expr=a.ColumnRef(name=a.Identifier(name="nope"))),),
            from_=(a.TableRef(name=(a.Identifier(name="Object"),)),),
        )
    )
    with pytest.raises(AdqlNameError) as info:
        check(query, CATALOG)
    assert info.value.line is None
    assert str(info.value).startswith("Unknown column 'nope'")


def test_deep_nesting_is_an_adql_error_not_a_crash() -> None:
    expr: a.Expr = a.NumericLiteral(text="1")
    for _ in range(20000):
        expr = a.BinaryOp(op="+", left=expr, right=a.NumericLiteral(text="1"))
    query = a.Query(
        body=a.SelectQuery(
            items=(a.SelectItem(expr=expr),),
            from_=(a.TableRef(name=(a.Identifier(name="Object"),)),),
        )
    )
    with pytest.raises(AdqlError, match="nested too deeply"):
        check(query, CATALOG)


def test_checking_does_not_change_the_input_tree() -> None:
    tree = parse("SELECT * FROM Object AS o WHERE o.coord_ra > 1 ORDER BY 1")
    before = repr(tree)
    check(tree, CATALOG)
    assert repr(tree) == before
    assert all(
        getattr(n, "binding", None) is None and getattr(n, "type_", None) is None
        for n in a.walk(tree)
    )


# =========================================================================== property


def _expressions() -> st.SearchStrategy[str]:
    leaves = st.sampled_from(
        [
            "coord_ra",
            "o.objectId",
            "band",
            "c.obsStart",
            "m.center",
            "m.fov",
            "m.s_region",
            "'x'",
            "1",
            "2.5",
            "NULL",
            "u.anything",
            "u.pos",
        ]
    )

    def compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        two = st.tuples(inner, inner)
        return st.one_of(
            two.map(lambda p: f"({p[0]} + {p[1]})"),
            two.map(lambda p: f"{p[0]} || {p[1]}"),
            two.map(lambda p: f"COALESCE({p[0]}, {p[1]})"),
            two.map(lambda p: f"POINT('ICRS', {p[0]}, {p[1]})"),
            two.map(lambda p: f"CIRCLE({p[0]}, {p[1]})"),
            two.map(lambda p: f"CONTAINS({p[0]}, {p[1]})"),
            two.map(lambda p: f"DISTANCE({p[0]}, {p[1]})"),
            inner.map(lambda e: f"ABS({e})"),
            inner.map(lambda e: f"-{e}"),
            inner.map(lambda e: f"LOWER({e})"),
            inner.map(lambda e: f"MAX({e})"),
            inner.map(lambda e: f"AREA({e})"),
            inner.map(lambda e: f"COORD1({e})"),
            inner.map(lambda e: f"CAST({e} AS INTEGER)"),
            inner.map(lambda e: f"IN_UNIT({e}, 'deg')"),
            inner.map(lambda e: f"(SELECT {e} FROM ForcedSource AS f)"),
        )

    return st.recursive(leaves, compound, max_leaves=6)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(_expressions(), _expressions(), _expressions())
def test_random_expressions_give_typed_trees_or_adql_errors(
    select: str, left: str, right: str
) -> None:
    """Whatever the mix of kinds, the checker answers with a typed tree or an AdqlError."""
    text = (
        f"SELECT {select} FROM Object AS o, CcdVisit AS c, demo.MixedCase AS m, "
        f"legacy.untyped AS u WHERE {left} = {right} ORDER BY 1"
    )
    try:
        tree = parse(text)
    except AdqlSyntaxError:
        return
    for catalog in (CATALOG, None):
        try:
            checked = check(tree, catalog)
        except AdqlError:
            continue
        for node in a.walk(checked.query):
            if isinstance(node, a.Expr):
                assert node.type_ is not None
            if isinstance(node, a.ColumnRef):
                assert node.binding is not None
