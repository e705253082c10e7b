"""Value types of ADQL expressions, expressed in VOTable terms.

The checker infers one ``ValueType`` per expression; the same triple (datatype, arraysize,
xtype) becomes the FIELD of an output column, so there is one vocabulary from TAP_SCHEMA to the
VOTable.  ``datatype`` None means "unknown" (NULL, a UDF without declared type, a column of a
table the checker could not see); unknown is compatible with everything.
"""

from __future__ import annotations

from dataclasses import dataclass

NUMERIC_DATATYPES = frozenset(
    {"boolean", "unsignedByte", "short", "int", "long", "float", "double"}
)
INTEGER_DATATYPES = frozenset({"unsignedByte", "short", "int", "long"})
STRING_DATATYPES = frozenset({"char", "unicodeChar"})
GEOMETRY_XTYPES = frozenset({"point", "circle", "polygon", "box", "region", "shape", "moc"})
REGION_XTYPES = frozenset({"adql:region", "region"})
"""xtypes of STC-S region strings (``char``): TAP 1.0's ``adql:REGION``, which ObsCore 1.1 gives
``s_region``.  Their geometry kind is ``region``; a dialect decides what it can do with them."""


@dataclass(frozen=True, slots=True)
class ValueType:
    datatype: str | None
    arraysize: str | None = None
    xtype: str | None = None

    @property
    def is_unknown(self) -> bool:
        return self.datatype is None

    @property
    def geometry(self) -> str | None:
        """The geometry kind (point, circle, polygon, box, region, shape, moc), else None."""
        if self.xtype is None:
            return None
        x = self.xtype.lower()
        if x in REGION_XTYPES:
            return "region"
        return x if x in GEOMETRY_XTYPES else None

    @property
    def is_geometry(self) -> bool:
        return self.geometry is not None

    @property
    def is_timestamp(self) -> bool:
        return self.xtype is not None and self.xtype.lower() == "timestamp"

    @property
    def is_string(self) -> bool:
        return self.datatype in STRING_DATATYPES and not self.is_geometry and not self.is_timestamp

    @property
    def is_numeric(self) -> bool:
        """Scalar numbers (booleans count: ADQL has no boolean values, TAP_SCHEMA has flags)."""
        return (
            self.datatype in NUMERIC_DATATYPES
            and not self.is_geometry
            and self.arraysize in (None, "1")
        )

    @property
    def is_integer(self) -> bool:
        return self.is_numeric and self.datatype in INTEGER_DATATYPES


UNKNOWN = ValueType(None)
NULL = ValueType(None)
BOOLEAN = ValueType("boolean")
SHORT = ValueType("short")
INT = ValueType("int")
LONG = ValueType("long")
FLOAT = ValueType("float")
DOUBLE = ValueType("double")
STRING = ValueType("char", "*")
UNICODE_STRING = ValueType("unicodeChar", "*")
TIMESTAMP = ValueType("char", "*", "timestamp")
POINT = ValueType("double", "2", "point")
CIRCLE = ValueType("double", "3", "circle")
POLYGON = ValueType("double", "*", "polygon")
REGION = ValueType("char", "*", "shape")
