-- MariaDB stand-ins for the scisql UDFs that the Qserv dialect emits.
--
-- Why: tests (and the docker-compose "Qserv stand-in") run the Qserv-dialect SQL on a plain
-- MariaDB, which has no scisql plugin.  These stored functions reproduce scisql's semantics:
-- degrees, great-circle edges, boundary points inside, NULL in -> NULL out.  Angular tests use
-- the haversine, exactly like the embedded (DuckDB) macros, so both backends agree row for row.
--
-- The one documented difference: real scisql_s2PtInCPoly is variadic (3 to 20 lon,lat vertex
-- pairs after the point).  MariaDB stored functions have a fixed arity and no overloading, so
-- this one takes the point plus exactly 20 vertex pairs, the unused ones NULL.  The Qserv
-- dialect renders what real Qserv accepts (no padding); the test harness appends the NULL
-- padding before running the SQL here (tests/adql/conftest.py: pad_cpoly_for_mariadb).
--
-- Load with the mysql client (the DELIMITER lines are client commands), or drop those lines
-- and split the text on the delimiter they declare.
-- The scisql_tap_* functions are private helpers of this file, not part of scisql.

DELIMITER $$

DROP FUNCTION IF EXISTS scisql_tap_hav $$
CREATE FUNCTION scisql_tap_hav(lon1 DOUBLE, lat1 DOUBLE, lon2 DOUBLE, lat2 DOUBLE)
RETURNS DOUBLE DETERMINISTIC NO SQL
COMMENT 'haversine term sin^2(dlat/2) + cos lat1 cos lat2 sin^2(dlon/2); monotonic in the angle'
RETURN POW(SIN(RADIANS(lat2 - lat1) / 2), 2)
     + COS(RADIANS(lat1)) * COS(RADIANS(lat2)) * POW(SIN(RADIANS(lon2 - lon1) / 2), 2) $$

DROP FUNCTION IF EXISTS scisql_tap_side $$
CREATE FUNCTION scisql_tap_side(lon DOUBLE, lat DOUBLE,
                                lon1 DOUBLE, lat1 DOUBLE, lon2 DOUBLE, lat2 DOUBLE)
RETURNS DOUBLE DETERMINISTIC NO SQL
COMMENT '(v1 x v2) . p: positive when p is left of the great circle from v1 to v2'
RETURN (COS(RADIANS(lat1)) * SIN(RADIANS(lon1)) * SIN(RADIANS(lat2))
          - SIN(RADIANS(lat1)) * COS(RADIANS(lat2)) * SIN(RADIANS(lon2)))
         * COS(RADIANS(lat)) * COS(RADIANS(lon))
     + (SIN(RADIANS(lat1)) * COS(RADIANS(lat2)) * COS(RADIANS(lon2))
          - COS(RADIANS(lat1)) * COS(RADIANS(lon1)) * SIN(RADIANS(lat2)))
         * COS(RADIANS(lat)) * SIN(RADIANS(lon))
     + (COS(RADIANS(lat1)) * COS(RADIANS(lat2)) * SIN(RADIANS(lon2 - lon1)))
         * SIN(RADIANS(lat)) $$

DROP FUNCTION IF EXISTS scisql_angSep $$
CREATE FUNCTION scisql_angSep(lon1 DOUBLE, lat1 DOUBLE, lon2 DOUBLE, lat2 DOUBLE)
RETURNS DOUBLE DETERMINISTIC NO SQL
COMMENT 'angular separation in degrees'
RETURN DEGREES(2 * ASIN(LEAST(1.0, SQRT(scisql_tap_hav(lon1, lat1, lon2, lat2))))) $$

DROP FUNCTION IF EXISTS scisql_s2PtInCircle $$
CREATE FUNCTION scisql_s2PtInCircle(lon DOUBLE, lat DOUBLE,
                                    centerLon DOUBLE, centerLat DOUBLE, radius DOUBLE)
RETURNS INT DETERMINISTIC NO SQL
COMMENT '1 when the point is within radius degrees of the centre (boundary inclusive)'
RETURN IF(radius < 0, 0,
          scisql_tap_hav(lon, lat, centerLon, centerLat)
            <= POW(SIN(RADIANS(LEAST(radius, 180)) / 2), 2)) $$

DROP FUNCTION IF EXISTS scisql_s2PtInBox $$
CREATE FUNCTION scisql_s2PtInBox(lon DOUBLE, lat DOUBLE,
                                 lonMin DOUBLE, latMin DOUBLE, lonMax DOUBLE, latMax DOUBLE)
RETURNS INT DETERMINISTIC NO SQL
COMMENT 'longitude/latitude box (not great circles); wraps through 0 when lonMin > lonMax'
RETURN lat BETWEEN latMin AND latMax
   AND IF(lonMin <= lonMax,
          MOD(MOD(lon, 360) + 360, 360) BETWEEN lonMin AND lonMax
            OR (lonMax - lonMin >= 360),
          MOD(MOD(lon, 360) + 360, 360) >= lonMin OR MOD(MOD(lon, 360) + 360, 360) <= lonMax) $$

DROP FUNCTION IF EXISTS scisql_s2PtInCPoly $$
CREATE FUNCTION scisql_s2PtInCPoly(lon DOUBLE, lat DOUBLE,
    v1lon DOUBLE, v1lat DOUBLE,
    v2lon DOUBLE, v2lat DOUBLE,
    v3lon DOUBLE, v3lat DOUBLE,
    v4lon DOUBLE, v4lat DOUBLE,
    v5lon DOUBLE, v5lat DOUBLE,
    v6lon DOUBLE, v6lat DOUBLE,
    v7lon DOUBLE, v7lat DOUBLE,
    v8lon DOUBLE, v8lat DOUBLE,
    v9lon DOUBLE, v9lat DOUBLE,
    v10lon DOUBLE, v10lat DOUBLE,
    v11lon DOUBLE, v11lat DOUBLE,
    v12lon DOUBLE, v12lat DOUBLE,
    v13lon DOUBLE, v13lat DOUBLE,
    v14lon DOUBLE, v14lat DOUBLE,
    v15lon DOUBLE, v15lat DOUBLE,
    v16lon DOUBLE, v16lat DOUBLE,
    v17lon DOUBLE, v17lat DOUBLE,
    v18lon DOUBLE, v18lat DOUBLE,
    v19lon DOUBLE, v19lat DOUBLE,
    v20lon DOUBLE, v20lat DOUBLE)
RETURNS INT DETERMINISTIC NO SQL
COMMENT 'convex polygon of 3 to 20 vertices (unused vertices NULL), either orientation'
BEGIN
  DECLARE n INT;
  DECLARE orient DOUBLE;
  DECLARE outside INT DEFAULT 0;
  IF lon IS NULL OR lat IS NULL OR v1lon IS NULL OR v2lon IS NULL OR v3lon IS NULL THEN
    RETURN NULL;
  END IF;
  SET n = 3 + (v4lon IS NOT NULL) + (v5lon IS NOT NULL) + (v6lon IS NOT NULL) + (v7lon IS NOT NULL) + (v8lon IS NOT NULL) + (v9lon IS NOT NULL) + (v10lon IS NOT NULL) + (v11lon IS NOT NULL) + (v12lon IS NOT NULL) + (v13lon IS NOT NULL) + (v14lon IS NOT NULL) + (v15lon IS NOT NULL) + (v16lon IS NOT NULL) + (v17lon IS NOT NULL) + (v18lon IS NOT NULL) + (v19lon IS NOT NULL) + (v20lon IS NOT NULL);
  -- Orientation from the first three vertices, so that the antipode of the interior (where
  -- every edge test has the "wrong" sign) is not taken for the interior.
  SET orient = IF(scisql_tap_side(v3lon, v3lat, v1lon, v1lat, v2lon, v2lat) < 0, -1, 1);
  IF orient * scisql_tap_side(lon, lat, v1lon, v1lat,
      IF(n = 1, v1lon, v2lon), IF(n = 1, v1lat, v2lat)) < 0 THEN SET outside = 1; END IF;
  IF orient * scisql_tap_side(lon, lat, v2lon, v2lat,
      IF(n = 2, v1lon, v3lon), IF(n = 2, v1lat, v3lat)) < 0 THEN SET outside = 1; END IF;
  IF orient * scisql_tap_side(lon, lat, v3lon, v3lat,
      IF(n = 3, v1lon, v4lon), IF(n = 3, v1lat, v4lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 4 AND orient * scisql_tap_side(lon, lat, v4lon, v4lat,
      IF(n = 4, v1lon, v5lon), IF(n = 4, v1lat, v5lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 5 AND orient * scisql_tap_side(lon, lat, v5lon, v5lat,
      IF(n = 5, v1lon, v6lon), IF(n = 5, v1lat, v6lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 6 AND orient * scisql_tap_side(lon, lat, v6lon, v6lat,
      IF(n = 6, v1lon, v7lon), IF(n = 6, v1lat, v7lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 7 AND orient * scisql_tap_side(lon, lat, v7lon, v7lat,
      IF(n = 7, v1lon, v8lon), IF(n = 7, v1lat, v8lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 8 AND orient * scisql_tap_side(lon, lat, v8lon, v8lat,
      IF(n = 8, v1lon, v9lon), IF(n = 8, v1lat, v9lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 9 AND orient * scisql_tap_side(lon, lat, v9lon, v9lat,
      IF(n = 9, v1lon, v10lon), IF(n = 9, v1lat, v10lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 10 AND orient * scisql_tap_side(lon, lat, v10lon, v10lat,
      IF(n = 10, v1lon, v11lon), IF(n = 10, v1lat, v11lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 11 AND orient * scisql_tap_side(lon, lat, v11lon, v11lat,
      IF(n = 11, v1lon, v12lon), IF(n = 11, v1lat, v12lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 12 AND orient * scisql_tap_side(lon, lat, v12lon, v12lat,
      IF(n = 12, v1lon, v13lon), IF(n = 12, v1lat, v13lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 13 AND orient * scisql_tap_side(lon, lat, v13lon, v13lat,
      IF(n = 13, v1lon, v14lon), IF(n = 13, v1lat, v14lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 14 AND orient * scisql_tap_side(lon, lat, v14lon, v14lat,
      IF(n = 14, v1lon, v15lon), IF(n = 14, v1lat, v15lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 15 AND orient * scisql_tap_side(lon, lat, v15lon, v15lat,
      IF(n = 15, v1lon, v16lon), IF(n = 15, v1lat, v16lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 16 AND orient * scisql_tap_side(lon, lat, v16lon, v16lat,
      IF(n = 16, v1lon, v17lon), IF(n = 16, v1lat, v17lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 17 AND orient * scisql_tap_side(lon, lat, v17lon, v17lat,
      IF(n = 17, v1lon, v18lon), IF(n = 17, v1lat, v18lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 18 AND orient * scisql_tap_side(lon, lat, v18lon, v18lat,
      IF(n = 18, v1lon, v19lon), IF(n = 18, v1lat, v19lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 19 AND orient * scisql_tap_side(lon, lat, v19lon, v19lat,
      IF(n = 19, v1lon, v20lon), IF(n = 19, v1lat, v20lat)) < 0 THEN SET outside = 1; END IF;
  IF n >= 20 AND orient * scisql_tap_side(lon, lat, v20lon, v20lat,
      v1lon, v1lat) < 0 THEN SET outside = 1; END IF;
  RETURN 1 - outside;
END $$

DELIMITER ;
