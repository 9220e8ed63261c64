"""Thai words of the web page, in one place (the figures' keys are those of `sinks.report`)."""

from __future__ import annotations

LEVEL_TH = {"national": "ประเทศ", "province": "จังหวัด", "district": "อำเภอ", "subdistrict": "ตำบล", "village": "หมู่บ้าน"}
CENTRE_TH = {"national": "ศจพ. ส่วนกลาง", "province": "ศจพ.จ.", "district": "ศจพ.อ.",
             "subdistrict": "ทีมปฏิบัติการตำบล"}
DIMENSION_TH = {"health": "สุขภาพ", "living": "ความเป็นอยู่", "education": "การศึกษา", "income": "รายได้",
                "access": "การเข้าถึงบริการรัฐ"}
STAGE_TH = {"SURVIVE": "อยู่รอด", "SUFFICIENT": "พอเพียง", "SUSTAINABLE": "ยั่งยืน"}
SEVERITY_TH = {"CRITICAL": "วิกฤต", "HIGH": "สูง", "MEDIUM": "ปานกลาง", "LOW": "ต่ำ"}
ALERT_LEVEL_TH = {"subdistrict": "ตำบล", "district": "อำเภอ", "province": "จังหวัด", "national": "ส่วนกลาง"}
ACTION_TH = {"RAISED": "แจ้งเตือน", "ESCALATED": "ยกระดับ", "ACKNOWLEDGED": "รับทราบ", "RESOLVED": "แก้ไขแล้ว"}
FAMILY_TH = {"tpmap.household": "TPMAP", "thaiqm.case": "Thai QM", "localgov.update": "อปท.", "alert": "การแจ้งเตือน"}

# Headline figures: (key of a level_summary row, Thai label). The browser test reads them by key.
HEADLINE = (
    ("households", "ครัวเรือน"),
    ("persons", "คน"),
    ("target_poor_households", "ครัวเรือนเป้าหมาย"),
    ("target_poor_persons", "คนจนเป้าหมาย"),
    ("assessed_households", "ครัวเรือนที่สำรวจปีล่าสุด"),
)
FAILED = tuple((f"failed_{d}", f"ตกเกณฑ์มิติ{th}") for d, th in DIMENSION_TH.items())
STAGES = (("stage_survive", "อยู่รอด"), ("stage_sufficient", "พอเพียง"), ("stage_sustainable", "ยั่งยืน"))
FOLLOW_UP = (
    ("visited_30d", "เยี่ยมบ้านภายใน 30 วัน (Knock Knock)"),
    ("visited_90d", "เยี่ยมบ้านภายใน 90 วัน"),
    ("open_problems", "ปัญหาที่ยังเปิดอยู่ (Thai QM)"),
    ("open_problem_households", "ครัวเรือนที่มีปัญหาเปิดอยู่"),
    ("assisted_households", "ครัวเรือนที่ได้รับความช่วยเหลือ"),
    ("assistance_given", "ครั้งที่ให้ความช่วยเหลือ"),
    ("assistance_baht", "มูลค่าความช่วยเหลือ (บาท)"),
)
ALERTS = (
    ("open_alerts_critical", "วิกฤต"),
    ("open_alerts_high", "สูง"),
    ("open_alerts_medium", "ปานกลาง"),
    ("open_alerts_low", "ต่ำ"),
    ("open_alerts_overdue", "เกินกำหนด"),
)
QUALITY = (
    ("compared_households", "ครัวเรือนที่มีทั้ง TPMAP และ Thai QM"),
    ("disagree_households", "TPMAP กับ Thai QM ไม่ตรงกัน"),
    ("disagree_tpmap_only", "TPMAP ตกเกณฑ์ แต่ Thai QM ไม่มีปัญหา"),
    ("disagree_thaiqm_only", "Thai QM มีปัญหา แต่ TPMAP ผ่านเกณฑ์"),
)
AGES = (("tpmap_age_s", "TPMAP"), ("thaiqm_age_s", "Thai QM"), ("localgov_age_s", "อปท."))
# Columns of the child-area table (and its CSV/XLSX export): the headline's and stages' labels, and
# shorter ones where a column heading needs them
CHILD_COLUMNS = (
    ("code", "รหัส"), ("name_th", "พื้นที่"),
    *HEADLINE[:4], *STAGES,
    ("visited_30d", "เยี่ยม 30 วัน"), ("open_problems", "ปัญหาเปิด"), ("assisted_households", "ได้รับช่วยเหลือ"),
    ("open_alerts_critical", "แจ้งเตือนวิกฤต"), ("open_alerts_high", "แจ้งเตือนสูง"),
    ("disagree_households", "ข้อมูลไม่ตรงกัน"),
)

# What a timeline entry says (event kinds of the three sources) and the names of its details
EVENT_TH = {"SNAPSHOT": "ข้อมูลรายปี", "LEFT_TARGET_LIST": "ออกจากรายชื่อเป้าหมาย", "CORRECTION": "แก้ไขข้อมูล",
            "SURVEYED": "สำรวจ", "PROBLEM_REPORTED": "แจ้งปัญหา", "PROBLEM_STATUS": "สถานะปัญหาเปลี่ยน",
            "HOME_VISIT": "เยี่ยมบ้าน", "ASSISTANCE": "ให้ความช่วยเหลือ", "REFERRAL": "ส่งต่อ", "ALLOWANCE": "เบี้ยยังชีพ"}
DETAIL_TH = {"failed_indicators": "ตัวชี้วัดที่ตกเกณฑ์", "failed_dimensions": "มิติที่ตกเกณฑ์",
             "target_poor_persons": "คนจนเป้าหมาย", "case_id": "เลขเคส", "problem_id": "ปัญหา", "dimension": "มิติ",
             "problem_code": "รหัสปัญหา", "previous_status": "สถานะเดิม", "status": "สถานะ", "agency": "หน่วยงาน",
             "org_code": "รหัส อปท.", "visit_findings": "สิ่งที่พบ", "visit_visitor_role": "ผู้เยี่ยม",
             "assistance_kind": "ประเภทความช่วยเหลือ", "assistance_amount_baht": "จำนวนเงิน (บาท)",
             "assistance_programme": "โครงการ", "allowance_allowance_type": "ประเภทเบี้ย", "allowance_status": "สถานะเบี้ย",
             "allowance_monthly_amount_baht": "บาท/เดือน", "referral_agency": "ส่งต่อไปยัง"}

# TPMAP's figures for a dimension selection (sinks/tpmap_figures.py): TPMAP's column, Thai label
TPMAP_HEADLINE = (
    ("poor.household.CNT", "ครัวเรือนที่ตกเกณฑ์มิติที่เลือก"),
    ("poor.JPT.CNT", "คนในครัวเรือนเหล่านั้น"),
    ("poor.JPT.MOFreg.CNT", "ลงทะเบียนบัตรสวัสดิการแห่งรัฐ"),
    ("poor.JPT.MOFval.CNT", "คนจนเป้าหมาย (MOFval)"),
    ("JPT.MOFval.pov.rate", "อัตราคนจนเป้าหมาย (%)"),
)
TPMAP_DIMENSION_COLUMNS = (
    ("poor.JPT.MOFval.health", "health", "สุขภาพ"),
    ("poor.JPT.MOFval.living", "living", "ความเป็นอยู่"),
    ("poor.JPT.MOFval.education", "education", "การศึกษา"),
    ("poor.JPT.MOFval.income", "income", "รายได้"),
    ("poor.JPT.MOFval.accessibility", "access", "การเข้าถึงบริการรัฐ"),
)
AGE_BUCKETS_TH = ("0-7 วัน", "8-30 วัน", "31-90 วัน", "เกิน 90 วัน")
