from geothai.abolished import abolished_areas

from sinks.areas import load_areas


def test_areas_match_geothai_and_reload_is_a_no_op(db):
    abolished = len(abolished_areas())
    assert load_areas(db) == 77 + 928 + 7436 + abolished
    load_areas(db)
    # Without FINAL: the repeated load must not even add rows waiting for a merge
    counts = dict(
        db.query("SELECT level, count() FROM areas WHERE NOT abolished GROUP BY level").result_rows
    )
    assert counts == {"province": 77, "district": 928, "subdistrict": 7436}
    assert db.command("SELECT count() FROM areas WHERE abolished") == abolished


def test_every_area_has_its_parent(db):
    load_areas(db)
    orphans = db.command(
        """
        SELECT count() FROM areas AS child
        LEFT ANTI JOIN areas AS parent ON parent.code = child.parent_code
        WHERE child.level != 'province'
        """
    )
    assert orphans == 0
