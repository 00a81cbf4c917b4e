"""Demo data: a retail workspace with Thai and Vietnamese customers, for trying the API.

``generate`` makes the data from a seed (the same seed always gives the same data) as request
bodies; ``load`` sends every body through the services after validating it with the API's own
input schemas, so the demo holds nothing the API would refuse and writes the same events.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import phonenumbers
from sqlalchemy.ext.asyncio import AsyncSession

import app.modules  # noqa: F401  (registrations: timeline sources, jobs)
from app.account.schemas import AccountCreate
from app.account.service import account as account_service
from app.auth.dependencies import AuthContext
from app.auth.scopes import Scope
from app.contact.relationship_schemas import RelationshipCreate
from app.contact.relationships import relationship as relationship_service
from app.contact.schemas import ContactCreate
from app.contact.service import contact as contact_service
from app.demo_cases import load_cases
from app.demo_history import DemoHistory, generate_history, load_history
from app.demo_loyalty import enrol_members, redeem_some
from app.demo_sales import load_sales
from app.kit.schemas import parse_input
from app.models.contact_relationship import RELATIONSHIP_INVERSES
from app.workspace.service import NewWorkspace
from app.workspace.service import workspace as workspace_service

DEMO_WORKSPACE_NAME = "Demo: Siam & Saigon Retail"
DEFAULT_CONTACTS = 300
DEFAULT_SEED = 42
# Ages are counted from a fixed day rather than today, so a seed gives the same birthdays
# whenever it is run.
_REFERENCE_DAY = date(2026, 1, 1)
# At most this share of a country's contacts work for one of its accounts; the rest are
# consumers, as in a retailer's customer base.
_ACCOUNT_MEMBER_SHARE = 0.4


# -- places ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Area:
    subdistrict: str
    district: str
    postal_code: str | None
    streets: tuple[str, ...]


@dataclass(frozen=True)
class _City:
    tag: str
    country: str
    province: str
    store_code: str  # branch prefix of point-of-sale customer numbers
    landline: str  # work numbers, '#' a digit, in the form people write them
    weight: int
    areas: tuple[_Area, ...]


def _th(subdistrict: str, district: str, postal_code: str, *streets: str) -> _Area:
    # Bangkok has khwaeng and khet; elsewhere tambon and amphoe, written with their prefixes.
    return _Area(subdistrict, district, postal_code, streets)


_BANGKOK = _City("bangkok", "TH", "กรุงเทพมหานคร", "BKK", "02-###-####", 50, (
    _th("แขวงลุมพินี", "เขตปทุมวัน", "10330", "ถนนวิทยุ", "ถนนราชดำริ", "ถนนหลังสวน"),
    _th("แขวงคลองเตยเหนือ", "เขตวัฒนา", "10110", "ซอยสุขุมวิท 23", "ถนนอโศกมนตรี"),
    _th("แขวงคลองตันเหนือ", "เขตวัฒนา", "10110", "ซอยทองหล่อ", "ซอยเอกมัย"),
    _th("แขวงสีลม", "เขตบางรัก", "10500", "ถนนสีลม", "ถนนคอนแวนต์"),
    _th("แขวงจอมพล", "เขตจตุจักร", "10900", "ถนนพหลโยธิน", "ถนนลาดพร้าว"),
    _th("แขวงห้วยขวาง", "เขตห้วยขวาง", "10310", "ถนนรัชดาภิเษก", "ถนนประชาราษฎร์บำเพ็ญ"),
    _th("แขวงบางจาก", "เขตพระโขนง", "10260", "ถนนสุขุมวิท", "ซอยสุขุมวิท 101"),
    _th("แขวงสามเสนใน", "เขตพญาไท", "10400", "ถนนพหลโยธิน", "ถนนประดิพัทธ์"),
    _th("แขวงบางนาเหนือ", "เขตบางนา", "10260", "ถนนบางนา-ตราด"),
))  # fmt: skip
_CHIANG_MAI = _City("chiang-mai", "TH", "เชียงใหม่", "CNX", "053-###-###", 25, (
    _th("ตำบลศรีภูมิ", "อำเภอเมืองเชียงใหม่", "50200", "ถนนมูลเมือง", "ถนนพระปกเกล้า"),
    _th("ตำบลช้างคลาน", "อำเภอเมืองเชียงใหม่", "50100", "ถนนช้างคลาน", "ถนนลอยเคราะห์"),
    _th("ตำบลสุเทพ", "อำเภอเมืองเชียงใหม่", "50200", "ถนนนิมมานเหมินท์", "ถนนห้วยแก้ว"),
    _th("ตำบลหนองหอย", "อำเภอเมืองเชียงใหม่", "50000", "ถนนเชียงใหม่-ลำพูน"),
    _th("ตำบลช้างเผือก", "อำเภอเมืองเชียงใหม่", "50300", "ถนนโชตนา", "ถนนช้างเผือก"),
    _th("ตำบลแม่เหียะ", "อำเภอเมืองเชียงใหม่", "50100", "ถนนคลองชลประทาน"),
    _th("ตำบลสันทรายน้อย", "อำเภอสันทราย", "50210", "ถนนเชียงใหม่-แม่โจ้"),
    _th("ตำบลริมใต้", "อำเภอแม่ริม", "50180", "ถนนโชตนา"),
))  # fmt: skip
_NONTHABURI = _City("nonthaburi", "TH", "นนทบุรี", "NTB", "02-###-####", 12, (
    _th("ตำบลบางกระสอ", "อำเภอเมืองนนทบุรี", "11000", "ถนนรัตนาธิเบศร์"),
    _th("ตำบลตลาดขวัญ", "อำเภอเมืองนนทบุรี", "11000", "ถนนงามวงศ์วาน", "ถนนประชาราษฎร์"),
    _th("ตำบลบางตลาด", "อำเภอปากเกร็ด", "11120", "ถนนแจ้งวัฒนะ"),
))  # fmt: skip
_PHUKET = _City("phuket", "TH", "ภูเก็ต", "HKT", "076-###-###", 7, (
    _th("ตำบลตลาดใหญ่", "อำเภอเมืองภูเก็ต", "83000", "ถนนถลาง", "ถนนเยาวราช"),
    _th("ตำบลป่าตอง", "อำเภอกะทู้", "83150", "ถนนราษฎร์อุทิศ 200 ปี", "ถนนบางลา"),
))  # fmt: skip
_KHON_KAEN = _City("khon-kaen", "TH", "ขอนแก่น", "KKC", "043-###-###", 6, (
    _th("ตำบลในเมือง", "อำเภอเมืองขอนแก่น", "40000", "ถนนมิตรภาพ", "ถนนศรีจันทร์"),
))  # fmt: skip


def _vn(ward: str, district: str, *streets: str) -> _Area:
    # Vietnamese addresses rarely carry a postal code, so none is made up.
    return _Area(ward, district, None, streets)


# The three-level form (phường, quận, thành phố) that most customer records still carry; the
# 2025 reform removed the district level, so newer addresses may leave it out.
_HANOI = _City("hanoi", "VN", "Thành phố Hà Nội", "HAN", "+84 24 #### ####", 38, (
    _vn("Phường Tràng Tiền", "Quận Hoàn Kiếm", "Tràng Tiền", "Hàng Bài"),
    _vn("Phường Hàng Bạc", "Quận Hoàn Kiếm", "Hàng Bạc", "Mã Mây", "Tạ Hiện"),
    _vn("Phường Dịch Vọng Hậu", "Quận Cầu Giấy", "Xuân Thủy", "Trần Thái Tông", "Duy Tân"),
    _vn("Phường Trung Hòa", "Quận Cầu Giấy", "Trần Duy Hưng"),
    _vn("Phường Láng Hạ", "Quận Đống Đa", "Láng Hạ", "Thái Hà", "Huỳnh Thúc Kháng"),
    _vn("Phường Kim Mã", "Quận Ba Đình", "Kim Mã", "Vạn Phúc"),
    _vn("Phường Quảng An", "Quận Tây Hồ", "Xuân Diệu", "Đặng Thai Mai", "Quảng An"),
))  # fmt: skip
_SAIGON = _City("hcmc", "VN", "Thành phố Hồ Chí Minh", "SGN", "+84 28 #### ####", 42, (
    _vn("Phường Bến Nghé", "Quận 1", "Lê Lợi", "Đồng Khởi", "Nguyễn Huệ", "Hai Bà Trưng"),
    _vn("Phường Bến Thành", "Quận 1", "Lê Thánh Tôn", "Lý Tự Trọng"),
    _vn("Phường Võ Thị Sáu", "Quận 3", "Nam Kỳ Khởi Nghĩa", "Pasteur", "Võ Văn Tần"),
    _vn("Phường Tân Phong", "Quận 7", "Nguyễn Văn Linh", "Nguyễn Lương Bằng", "Tôn Dật Tiên"),
    _vn("Phường 25", "Quận Bình Thạnh", "Điện Biên Phủ", "Ung Văn Khiêm"),
    _vn("Phường 13", "Quận Tân Bình", "Cộng Hòa"),
    _vn("Phường 7", "Quận Phú Nhuận", "Phan Xích Long", "Phan Đăng Lưu"),
    _vn("Phường Thảo Điền", "Thành phố Thủ Đức", "Quốc Hương", "Xuân Thủy", "Thảo Điền"),
))  # fmt: skip
_DA_NANG = _City("da-nang", "VN", "Thành phố Đà Nẵng", "DAD", "+84 236 ### ####", 15, (
    _vn("Phường Thạch Thang", "Quận Hải Châu", "Bạch Đằng", "Lê Duẩn"),
    _vn("Phường Hải Châu I", "Quận Hải Châu", "Trần Phú", "Phan Châu Trinh"),
    _vn("Phường An Hải Bắc", "Quận Sơn Trà", "Phạm Văn Đồng", "Ngô Quyền"),
    _vn("Phường Mỹ An", "Quận Ngũ Hành Sơn", "Võ Nguyên Giáp", "Hồ Xuân Hương"),
))  # fmt: skip
_CAN_THO = _City("can-tho", "VN", "Thành phố Cần Thơ", "VCA", "+84 292 ### ####", 5, (
    _vn("Phường Tân An", "Quận Ninh Kiều", "Hai Bà Trưng", "Ngô Gia Tự"),
))  # fmt: skip

_CITIES = {
    "TH": (_BANGKOK, _CHIANG_MAI, _NONTHABURI, _PHUKET, _KHON_KAEN),
    "VN": (_HANOI, _SAIGON, _DA_NANG, _CAN_THO),
}
_CITY_BY_TAG = {city.tag: city for cities in _CITIES.values() for city in cities}

# -- names -----------------------------------------------------------------------------------
# Thai names in Thai script with the romanisation people use for their e-mail addresses.
_TH_MALE = (
    ("สมชาย", "somchai"), ("สมศักดิ์", "somsak"), ("ประเสริฐ", "prasert"), ("วิชัย", "wichai"),
    ("ธนากร", "thanakorn"), ("กิตติพงษ์", "kittipong"), ("ณัฐวุฒิ", "nattawut"),
    ("อนุชา", "anucha"), ("สุรชัย", "surachai"), ("พงศกร", "pongsakorn"),
    ("ธีรวัฒน์", "teerawat"), ("ชัยวัฒน์", "chaiwat"), ("อภิชาติ", "apichat"),
    ("วีระพงษ์", "weerapong"), ("ศุภชัย", "supachai"), ("เอกชัย", "ekkachai"),
    ("ภานุวัฒน์", "panuwat"), ("ธนวัฒน์", "thanawat"), ("วรวุฒิ", "worawut"),
    ("สิทธิชัย", "sitthichai"), ("ปกรณ์", "pakorn"), ("ณรงค์", "narong"), ("อดิศักดิ์", "adisak"),
    ("ธนพล", "thanaphon"), ("กฤษดา", "kritsada"),
)  # fmt: skip
_TH_FEMALE = (
    ("สมศรี", "somsri"), ("มาลี", "malee"), ("กนกวรรณ", "kanokwan"), ("สุภาพร", "supaporn"),
    ("ศิริพร", "siriporn"), ("ปิยะนุช", "piyanuch"), ("พิมพ์ชนก", "pimchanok"),
    ("ณัฐธิดา", "nattida"), ("วราภรณ์", "waraporn"), ("อรทัย", "orathai"), ("รัตนา", "rattana"),
    ("นภัสสร", "napatsorn"), ("จิราพร", "jiraporn"), ("ธิดารัตน์", "thidarat"),
    ("พรทิพย์", "porntip"), ("สุนิสา", "sunisa"), ("ชนิดา", "chanida"),
    ("กมลชนก", "kamonchanok"), ("ปวีณา", "paweena"), ("อัญชลี", "anchalee"),
    ("น้ำทิพย์", "namthip"), ("เพ็ญศรี", "pensri"), ("ดวงใจ", "duangjai"),
    ("วิไลวรรณ", "wilaiwan"), ("ศศิธร", "sasithorn"),
)  # fmt: skip
_TH_FAMILY = (
    ("ใจดี", "jaidee"), ("วงศ์สวัสดิ์", "wongsawat"), ("ศรีสุข", "srisuk"),
    ("แก้วมณี", "kaewmanee"), ("รุ่งเรือง", "rungruang"), ("ทองดี", "thongdee"),
    ("บุญมา", "boonma"), ("สุขสวัสดิ์", "suksawat"), ("เจริญผล", "charoenphon"),
    ("พรหมสุวรรณ", "phromsuwan"), ("ชัยประเสริฐ", "chaiprasert"),
    ("อินทรสุวรรณ", "intarasuwan"), ("ศรีวงศ์", "sriwong"), ("มณีวงศ์", "maneewong"),
    ("สุวรรณรัตน์", "suwannarat"), ("ปัญญาดี", "panyadee"), ("จันทร์เพ็ญ", "janpen"),
    ("เพชรรัตน์", "phetcharat"), ("กิตติวงศ์", "kittiwong"), ("วัฒนกุล", "wattanakul"),
    ("เลิศวิริยะ", "lertwiriya"), ("บุญเรือง", "boonruang"), ("นาคสวัสดิ์", "naksawat"),
    ("ทองคำ", "thongkham"), ("แสงทอง", "saengthong"), ("สมบูรณ์ชัย", "somboonchai"),
    ("อุดมสุข", "udomsuk"), ("ศรีสวัสดิ์", "srisawat"), ("คำแก้ว", "khamkaew"),
)  # fmt: skip
# Thais go by a short nickname far more than by their given name.
_TH_NICKNAMES = {
    "male": ("ต้น", "บอล", "เบียร์", "เก่ง", "แบงค์", "ป๊อป", "กอล์ฟ", "เอ็ม", "ตูน", "บิ๊ก"),
    "female": ("นุ่น", "ปลา", "แนน", "ฝน", "มิ้นท์", "แพร", "ปุ๋ย", "น้ำ", "ขวัญ", "เมย์"),
}
# Family names with rough weights: Nguyễn alone is held by about four in ten Vietnamese.
_VN_FAMILY = (
    ("Nguyễn", 38), ("Trần", 11), ("Lê", 9), ("Phạm", 7), ("Hoàng", 5), ("Huỳnh", 5),
    ("Phan", 4), ("Vũ", 4), ("Võ", 4), ("Đặng", 2), ("Bùi", 2), ("Đỗ", 2), ("Hồ", 1),
    ("Ngô", 1), ("Dương", 1), ("Lý", 1),
)  # fmt: skip
_VN_MIDDLE = {
    "male": ("Văn", "Hữu", "Minh", "Đức", "Quốc", "Thanh", "Công", "Gia"),
    "female": ("Thị", "Ngọc", "Thu", "Thanh", "Phương", "Minh", "Bảo", "Khánh"),
}
_VN_GIVEN = {
    "male": (
        "An", "Bình", "Cường", "Dũng", "Đức", "Hải", "Hiếu", "Hoàng", "Huy", "Hùng", "Khoa",
        "Khánh", "Long", "Minh", "Nam", "Phúc", "Quân", "Quang", "Sơn", "Tài", "Thắng",
        "Thành", "Trung", "Tuấn", "Việt", "Vinh",
    ),
    "female": (
        "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Lan", "Linh",
        "Mai", "My", "Ngân", "Nhung", "Oanh", "Phương", "Quỳnh", "Thảo", "Trang", "Trâm",
        "Uyên", "Vy", "Yến",
    ),
}  # fmt: skip

_JOB_TITLES = {
    "TH": ("ผู้จัดการฝ่ายจัดซื้อ", "เจ้าของร้าน", "ผู้จัดการสาขา", "เจ้าหน้าที่บัญชี",
           "กรรมการผู้จัดการ", "ผู้จัดการฝ่ายขาย", "เจ้าหน้าที่การตลาด"),
    "VN": ("Trưởng phòng mua hàng", "Chủ cửa hàng", "Quản lý chi nhánh", "Kế toán",
           "Giám đốc", "Trưởng phòng kinh doanh", "Nhân viên marketing"),
}  # fmt: skip
_OWNERS = {"TH": ("kanokwan.s", "thanakorn.p", "siriporn.w"), "VN": ("minh.tran", "linh.nguyen")}
_EMAIL_DOMAINS = {
    "TH": (("example.co.th", 5), ("example.com", 3), ("example.net", 2)),
    "VN": (("example.vn", 4), ("example.com.vn", 3), ("example.com", 3)),
}
# Mobile prefixes in use (after the trunk 0): Thailand 06x, 08x, 09x; Vietnam's networks.
_TH_MOBILE = ("61", "62", "63", "64", "65", *(f"8{d}" for d in range(10)),
              *(f"9{d}" for d in range(10)))  # fmt: skip
_VN_MOBILE = ("32", "33", "34", "35", "36", "37", "38", "39", "70", "76", "77", "78", "79",
              "81", "82", "83", "84", "85", "86", "88", "89", "90", "91", "93", "94", "96",
              "97", "98")  # fmt: skip

# (source, channel, weight) for consumers, by country; business contacts have their own.
_CONSUMER_SOURCES = {
    "TH": (
        ("line_oa", "social", 22), ("facebook", "social", 14), ("instagram", "social", 6),
        ("shopee", "marketplace", 12), ("lazada", "marketplace", 8),
        ("website", "online_store", 12), ("walk_in", "store", 14), ("referral", "referral", 9),
        ("google", "search", 3),
    ),
    "VN": (
        ("zalo_oa", "social", 20), ("facebook", "social", 14), ("tiktok", "social", 8),
        ("shopee", "marketplace", 12), ("tiki", "marketplace", 6),
        ("website", "online_store", 12), ("walk_in", "store", 14), ("referral", "referral", 10),
        ("google", "search", 4),
    ),
}  # fmt: skip
_BUSINESS_SOURCES = (
    ("trade_show", "event", 3), ("sales_outreach", "outbound", 4), ("referral", "referral", 2),
    ("website", "online_store", 1),
)  # fmt: skip
_CONSUMER_STAGES = (
    ("customer", 48), ("lead", 15), ("prospect", 12), ("advocate", 9), ("ambassador", 3),
    ("churned", 10),
)  # fmt: skip
_BUSINESS_STAGES = (("customer", 70), ("prospect", 20), ("lead", 10))
_CHURN_REASONS = ("moved_away", "price", "switched_to_competitor", "no_longer_needed")
_NOTES = {
    "referred_by": {"TH": "แนะนำเพื่อนผ่าน LINE", "VN": "Giới thiệu bạn qua Zalo"},
    "advocate_of": {"TH": "ชวนมางานชิมสินค้า", "VN": "Mời tham gia buổi dùng thử sản phẩm"},
}

# -- accounts --------------------------------------------------------------------------------
# (key, parent key, city, name, type, domain, industry, size, name in the local script); parents
# come first.
_AccountRow = tuple[str, str | None, str, str, str, str | None, str, str, str | None]
_ACCOUNTS: tuple[_AccountRow, ...] = (
    ("siam-fresh", None, "bangkok", "Siam Fresh Distribution Co., Ltd.", "distributor",
     "siamfreshdistribution.co.th", "Food & beverage", "large",
     "บริษัท สยามเฟรช ดิสทริบิวชั่น จำกัด"),
    ("siam-fresh-sukhumvit", "siam-fresh", "bangkok", "Siam Fresh Mart Sukhumvit 39",
     "retailer", None, "Grocery retail", "small", "สยามเฟรช มาร์ท สุขุมวิท 39"),
    ("siam-fresh-silom", "siam-fresh", "bangkok", "Siam Fresh Mart Silom", "retailer", None,
     "Grocery retail", "small", "สยามเฟรช มาร์ท สีลม"),
    ("siam-fresh-north", "siam-fresh", "chiang-mai", "Siam Fresh North Co., Ltd.", "distributor",
     "siamfreshnorth.co.th", "Food & beverage", "medium", "บริษัท สยามเฟรช นอร์ท จำกัด"),
    ("siam-fresh-nimman", "siam-fresh-north", "chiang-mai", "Siam Fresh Mart Nimman",
     "retailer", None, "Grocery retail", "small", "สยามเฟรช มาร์ท นิมมาน"),
    ("siam-fresh-mae-rim", "siam-fresh-north", "chiang-mai", "Siam Fresh Mart Mae Rim",
     "retailer", None, "Grocery retail", "micro", "สยามเฟรช มาร์ท แม่ริม"),
    ("lanna-hill", None, "chiang-mai", "Lanna Hill Coffee Roasters", "supplier",
     "lannahillcoffee.co.th", "Coffee", "small", "ลานนาฮิลล์ คอฟฟี่ โรสเตอร์"),
    ("chao-phraya-home", None, "bangkok", "Chao Phraya Home & Living Co., Ltd.", "customer",
     "chaophrayahome.co.th", "Home furnishings", "medium",
     "บริษัท เจ้าพระยา โฮม แอนด์ ลิฟวิ่ง จำกัด"),
    ("ping-river", None, "chiang-mai", "Ping River Crafts", "retailer", "pingrivercrafts.com",
     "Handicrafts", "micro", "ร้านหัตถกรรมริมปิง"),
    ("krungthep-beauty", None, "bangkok", "Krungthep Beauty Supply Co., Ltd.", "distributor",
     "krungthepbeauty.co.th", "Cosmetics", "medium", "บริษัท กรุงเทพ บิวตี้ ซัพพลาย จำกัด"),
    ("krungthep-beauty-cnx", "krungthep-beauty", "chiang-mai", "Krungthep Beauty Chang Khlan",
     "retailer", None, "Cosmetics", "small", "กรุงเทพ บิวตี้ สาขาช้างคลาน"),
    ("nimman-creative", None, "chiang-mai", "Nimman Creative Studio", "partner",
     "nimmancreative.com", "Marketing services", "micro", None),
    ("baan-suan", None, "chiang-mai", "ไร่บ้านสวนออร์แกนิก", "supplier", "baansuanorganic.com",
     "Agriculture", "small", None),
    ("sukhumvit-wellness", None, "bangkok", "Sukhumvit Wellness Clinic", "customer",
     "sukhumvitwellness.co.th", "Healthcare", "small", "สุขุมวิท เวลเนส คลินิก"),
    ("thonglor-smile", None, "bangkok", "Thonglor Smile Dental Group", "customer",
     "thonglorsmile.co.th", "Healthcare", "medium", "ทองหล่อ สไมล์ เดนทัล กรุ๊ป"),
    ("rattanakosin-hotels", None, "bangkok", "Rattanakosin Heritage Hotels", "customer",
     "rattanakosinheritage.com", "Hospitality", "large", None),
    ("bkk-last-mile", None, "bangkok", "BKK Last Mile Logistics Co., Ltd.", "partner",
     "bkklastmile.co.th", "Logistics", "medium", "บริษัท บีเคเค ลาสต์ไมล์ โลจิสติกส์ จำกัด"),
    ("ari-pharmacy", None, "bangkok", "ร้านยาอารีย์เภสัช", "retailer", None, "Pharmacy", "micro",
     None),
    ("saigon-green", None, "hcmc", "Saigon Green Distribution JSC", "distributor",
     "saigongreen.com.vn", "Food & beverage", "large",
     "Công ty Cổ phần Phân phối Sài Gòn Xanh"),
    ("saigon-green-q1", "saigon-green", "hcmc", "Saigon Green Mart Quận 1", "retailer", None,
     "Grocery retail", "small", None),
    ("saigon-green-thao-dien", "saigon-green", "hcmc", "Saigon Green Mart Thảo Điền",
     "retailer", None, "Grocery retail", "small", None),
    ("saigon-green-da-nang", "saigon-green", "da-nang", "Saigon Green Mart Đà Nẵng",
     "retailer", None, "Grocery retail", "small", None),
    ("hong-ha", None, "hanoi", "Công ty TNHH Thương mại Hồng Hà", "distributor",
     "honghatrading.vn", "Consumer electronics", "medium", None),
    ("hong-ha-cau-giay", "hong-ha", "hanoi", "Hồng Hà Digital Cầu Giấy", "retailer", None,
     "Consumer electronics", "small", None),
    ("lua-pho-co", None, "hanoi", "Lụa Tơ Tằm Phố Cổ", "retailer", "luaphoco.vn", "Apparel",
     "small", None),
    ("mekong-bean", None, "hcmc", "Mekong Bean Coffee Co., Ltd.", "supplier",
     "mekongbean.vn", "Coffee", "medium", "Công ty TNHH Cà phê Mekong Bean"),
    ("son-tra-bay", None, "da-nang", "Sơn Trà Bay Resort", "customer", "sontrabay.vn",
     "Hospitality", "large", None),
    ("song-han-logistics", None, "da-nang", "Sông Hàn Logistics", "partner",
     "songhanlogistics.vn", "Logistics", "medium", None),
    ("ca-phe-pho-co", None, "hanoi", "Chuỗi Cà phê Phố Cổ", "customer", "caphephoco.vn",
     "Food & beverage", "medium", None),
    ("saigon-beauty-lab", None, "hcmc", "Saigon Beauty Lab", "retailer", "saigonbeautylab.vn",
     "Cosmetics", "small", None),
    ("noi-that-tay-ho", None, "hanoi", "Nội thất Tây Hồ", "customer", "noithattayho.vn",
     "Home furnishings", "small", None),
    ("vietnext", None, "hcmc", "VietNext Software JSC", "partner", "vietnext.vn", "Software",
     "medium", "Công ty Cổ phần Phần mềm VietNext"),
)  # fmt: skip
_MEMBERS_BY_SIZE = {"micro": (1, 2), "small": (1, 3), "medium": (2, 4), "large": (3, 6)}


# -- what generate() returns -----------------------------------------------------------------
@dataclass(frozen=True)
class AccountSeed:
    key: str
    body: dict[str, Any]  # an AccountCreate body, less parent_account_id
    parent: str | None  # the key of an account listed before this one
    country: str


@dataclass(frozen=True)
class ContactSeed:
    body: dict[str, Any]  # a ContactCreate body, less account_id
    account: str | None
    country: str


@dataclass(frozen=True)
class RelationshipSeed:
    contact: int  # positions in DemoData.contacts
    related: int
    type: str
    note: str | None = None


@dataclass(frozen=True)
class DemoData:
    accounts: list[AccountSeed]
    contacts: list[ContactSeed]
    relationships: list[RelationshipSeed]
    history: DemoHistory = field(default_factory=lambda: DemoHistory([], []))
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class DemoCounts:
    accounts: int
    contacts: int
    relationships: int  # links; each is also stored as its inverse on the other contact
    interactions: int = 0
    purchases: int = 0
    refunds: int = 0
    loyalty_members: int = 0
    redemptions: int = 0
    cases: int = 0


@dataclass(frozen=True)
class DemoWorkspace:
    created: NewWorkspace
    counts: DemoCounts


# -- generating ------------------------------------------------------------------------------
@dataclass
class _Person:
    country: str
    gender: str
    given: str
    family: str
    given_roman: str  # ASCII, lower case
    family_roman: str
    birthday: date
    city: _City
    address: dict[str, Any]
    middle_roman: str = ""  # Vietnamese middle name, for e-mails such as nguyenvanan
    account: str | None = None
    stage: str = "customer"
    links: list[tuple[_Person, str, str | None]] = field(default_factory=list)
    index: int = -1


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, ...]]) -> tuple[Any, ...]:
    """One of ``weighted``, whose items end with their weight."""
    return rng.choices(weighted, weights=[item[-1] for item in weighted])[0]


def _ascii(text: str) -> str:
    """``Nguyễn`` -> ``nguyen``; đ is a letter of its own, not a d with a mark."""
    text = text.replace("đ", "d").replace("Đ", "D")
    folded = unicodedata.normalize("NFD", text)
    return "".join(c for c in folded if not unicodedata.combining(c)).lower().replace(" ", "")


def _digits(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if c == "#" else c for c in pattern)


class _Generator:
    def __init__(self, seed: int) -> None:
        # Demo data, not secrets: a seeded generator makes a run reproducible.
        self.rng = random.Random(seed)  # noqa: S311
        self.emails: set[str] = set()
        self.phones: set[str] = set()
        self.counters: dict[str, int] = {}

    def next_number(self, name: str, start: int) -> int:
        self.counters[name] = self.counters.get(name, start) + 1
        return self.counters[name]

    # -- contact points ----------------------------------------------------------------------
    def phone(self, country: str, pattern: str | None = None) -> str:
        """A valid number not used before, written as people write it."""
        rng = self.rng
        for _ in range(100):
            if pattern is not None:
                text = _digits(rng, pattern)
            elif country == "TH":
                prefix = rng.choice(_TH_MOBILE)
                text = _digits(rng, f"0{prefix}-###-####")
                if rng.random() < 0.2:
                    text = text.replace("-", "")
            else:
                # Written with +84: the workspace reads numbers without + as Thai ones.
                text = _digits(rng, f"+84 {rng.choice(_VN_MOBILE)}# ### ###")
            parsed = phonenumbers.parse(text, country)
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(parsed) and e164 not in self.phones:
                self.phones.add(e164)
                return text
        raise RuntimeError(f"no valid phone number for {country} {pattern or 'mobile'}")

    def email(self, person: _Person) -> str:
        rng = self.rng
        given, family = person.given_roman, person.family_roman
        year = f"{person.birthday.year % 100:02d}"
        if person.country == "TH":
            forms = (f"{given}.{family[0]}", f"{given}.{family}", f"{given}{family[:3]}{year}",
                     f"{given}_{rng.randrange(1, 100)}")  # fmt: skip
        else:
            middle = person.middle_roman
            forms = (f"{given}.{family}", f"{family}{middle}{given}",
                     f"{given}{family[0]}{middle[0]}", f"{family}.{given}{year}")  # fmt: skip
        local = rng.choice(forms)
        domain = _pick(rng, _EMAIL_DOMAINS[person.country])[0]
        address, number = f"{local}@{domain}", 1
        while address in self.emails:
            number += 1
            address = f"{local}{number}@{domain}"
        self.emails.add(address)
        return address

    def address(self, city: _City, kind: str = "home") -> dict[str, Any]:
        rng = self.rng
        area = rng.choice(city.areas)
        street = rng.choice(area.streets)
        number = str(rng.randrange(1, 400))
        if rng.random() < 0.4:
            number += f"/{rng.randrange(1, 60)}"
        if city.country == "TH":
            # Outside Bangkok many addresses are in a village (moo) of the tambon.
            rural = city is not _BANGKOK and rng.random() < 0.3
            line1 = f"{number}{f' หมู่ {rng.randrange(1, 12)}' if rural else ''} {street}"
        elif rng.random() < 0.3:
            line1 = f"Số {rng.randrange(1, 80)}, ngõ {rng.randrange(2, 200)} {street}"
        else:
            line1 = f"{'Số ' if rng.random() < 0.4 else ''}{number} {street}"
        result = {
            "type": kind,
            "line1": line1,
            "subdistrict": area.subdistrict,
            "district": area.district,
            "province": city.province,
            "postal_code": area.postal_code,
            "country": city.country,
        }
        return {key: value for key, value in result.items() if value is not None}

    # -- people ------------------------------------------------------------------------------
    def city(self, country: str) -> _City:
        city: _City = _pick(self.rng, [(c, c.weight) for c in _CITIES[country]])[0]
        return city

    def person(
        self,
        country: str,
        *,
        city: _City | None = None,
        gender: str | None = None,
        age: tuple[int, int] = (19, 72),
        family: tuple[str, str] | None = None,
        address: dict[str, Any] | None = None,
    ) -> _Person:
        rng = self.rng
        gender = gender or rng.choice(("male", "female"))
        city = city or self.city(country)
        if country == "TH":
            given, given_roman = rng.choice(_TH_MALE if gender == "male" else _TH_FEMALE)
            family_name, family_roman = family or rng.choice(_TH_FAMILY)
            middle_roman = ""
        else:
            family_name = family[0] if family else _pick(rng, _VN_FAMILY)[0]
            family_roman = _ascii(family_name)
            middle = rng.choice(_VN_MIDDLE[gender])
            first = rng.choice(_VN_GIVEN[gender])
            given, given_roman = f"{middle} {first}", _ascii(first)
            middle_roman = _ascii(middle)
        days = rng.randrange(age[0] * 365, age[1] * 365)
        return _Person(
            country=country,
            gender=gender,
            given=given,
            family=family_name,
            given_roman=given_roman,
            family_roman=family_roman,
            middle_roman=middle_roman,
            birthday=_REFERENCE_DAY - timedelta(days=days),
            city=city,
            address=address or self.address(city),
        )

    def household(self, country: str, size: int) -> list[_Person]:
        """A couple, with grown children when ``size`` > 2, at one address."""
        rng = self.rng
        head = self.person(country, age=(40, 70))
        partner_gender = "female" if head.gender == "male" else "male"
        # Thai couples usually share a surname; a Vietnamese wife keeps her own.
        shared = (head.family, head.family_roman) if country == "TH" else None
        partner = self.person(
            country, city=head.city, gender=partner_gender, address=head.address,
            family=shared, age=(max(19, _age(head) - 6), _age(head) + 4),
        )  # fmt: skip
        father = head if head.gender == "male" else partner
        members = [head, partner]
        if size == 2 and rng.random() < 0.3:
            head.links.append((partner, "household", None))  # siblings or flatmates
        else:
            head.links.append((partner, "spouse", None))
        for _ in range(size - 2):
            child = self.person(
                country, city=head.city, address=head.address,
                family=(father.family, father.family_roman),
                age=(19, max(20, _age(head) - 22)),
            )  # fmt: skip
            child.links += [(head, "child", None), (partner, "child", None)]
            for sibling in members[2:]:
                child.links.append((sibling, "household", None))
            members.append(child)
        return members


def _age(person: _Person) -> int:
    return (_REFERENCE_DAY - person.birthday).days // 365


def generate(contacts: int = DEFAULT_CONTACTS, seed: int = DEFAULT_SEED) -> DemoData:
    """The demo's accounts, ``contacts`` contacts (half Thai, half Vietnamese) and links."""
    if contacts < 2:
        raise ValueError("the demo needs at least two contacts")
    gen = _Generator(seed)
    rng = gen.rng
    accounts = [_account_seed(gen, row) for row in _ACCOUNTS]
    people: list[_Person] = []
    for country, count in (("TH", (contacts + 1) // 2), ("VN", contacts // 2)):
        people += _people(gen, country, count, [a for a in accounts if a.country == country])
    rng.shuffle(people)  # interleaved, as sign-ups from both countries would be
    for index, person in enumerate(people):
        person.index = index
    _add_referrals(gen, people)
    bodies = [_contact_body(gen, person) for person in people]
    links = _relationships(people)
    history = generate_history(
        seed,
        countries=[person.country for person in people],
        stages=[body.get("lifecycle_stage", "lead") for body in bodies],
        stores=[f"{person.city.store_code}-01" for person in people],
    )
    return DemoData(
        accounts=accounts,
        contacts=[
            ContactSeed(body=body, account=person.account, country=person.country)
            for person, body in zip(people, bodies, strict=True)
        ],
        relationships=links,
        history=history,
        seed=seed,
    )


def _account_seed(gen: _Generator, row: _AccountRow) -> AccountSeed:
    key, parent, city_tag, name, kind, domain, industry, size, native = row
    city = _CITY_BY_TAG[city_tag]
    attributes: dict[str, Any] = {"city": city_tag, "country": city.country}
    if native is not None:
        attributes["local_name"] = native
    external_ids: dict[str, str] = {}
    if parent is None or domain is not None:  # a company of its own, in the ERP
        attributes["tax_id"] = _tax_id(gen.rng, city)
        external_ids["erp"] = f"{city.country}-{gen.next_number('erp', 1000)}"
    else:  # a store, known to the tills by its branch code
        external_ids["pos"] = f"{city.store_code}-{gen.next_number('branch:' + city.tag, 0):02d}"
    body: dict[str, Any] = {
        "name": name,
        "type": kind,
        "industry": industry,
        "size": size,
        "owner_id": gen.rng.choice(_OWNERS[city.country]),
        "attributes": attributes,
        "external_ids": external_ids,
    }
    if domain is not None:
        body["domain"] = domain
    return AccountSeed(key=key, body=body, parent=parent, country=city.country)


def _tax_id(rng: random.Random, city: _City) -> str:
    if city.country == "VN":
        # Enterprise codes begin with the province that registered them.
        province = {"hanoi": "01", "hcmc": "03", "da-nang": "04"}.get(city.tag, "18")
        return province + _digits(rng, "########")
    # A Thai juristic person's 13-digit number: 0, the province office, then a check digit.
    office = "0105" if city is _BANGKOK else "0505"
    body = office + _digits(rng, "########")
    check = (11 - sum(int(d) * (13 - i) for i, d in enumerate(body)) % 11) % 10
    return body + str(check)


def _people(
    gen: _Generator, country: str, count: int, accounts: list[AccountSeed]
) -> list[_Person]:
    rng = gen.rng
    people: list[_Person] = []
    budget = int(count * _ACCOUNT_MEMBER_SHARE)
    for account in rng.sample(accounts, len(accounts)):
        low, high = _MEMBERS_BY_SIZE[account.body["size"]]
        size = min(rng.randint(low, high), budget)
        if size <= 0:
            break
        budget -= size
        city = _CITY_BY_TAG[account.body["attributes"]["city"]]
        members = [gen.person(country, city=city, age=(23, 62)) for _ in range(size)]
        for member in members:
            member.account = account.key
            member.stage = _pick(rng, _BUSINESS_STAGES)[0]
        for colleague in members[1:]:  # everyone knows the account's main contact
            colleague.links.append((members[0], "colleague", None))
        people += members
    while len(people) < count:
        left = count - len(people)
        if left >= 2 and rng.random() < 0.12:
            size = min(left, _pick(rng, ((2, 6), (3, 3), (4, 1)))[0])
            people += gen.household(country, size)
        else:
            people.append(gen.person(country))
    for person in people:
        if person.account is None:
            person.stage = _pick(rng, _CONSUMER_STAGES)[0]
    return people


def _add_referrals(gen: _Generator, people: list[_Person]) -> None:
    """Ambassadors and advocates vouch for others; some sign-ups were referred by a fan."""
    rng = gen.rng
    for country in ("TH", "VN"):
        local = [p for p in people if p.country == country]
        fans = [p for p in local if p.stage in ("advocate", "ambassador")]
        consumers = [p for p in local if p.account is None]
        for fan in fans:
            reach = rng.randint(2, 4) if fan.stage == "ambassador" else rng.randint(0, 1)
            chosen = rng.sample(consumers, min(reach + 1, len(consumers)))
            for other in [p for p in chosen if p is not fan][:reach]:
                fan.links.append((other, "advocate_of", _NOTES["advocate_of"][country]))
        referrers = fans or [p for p in local if p.stage == "customer"]
        for person in local:
            if person.account is not None or person.stage not in ("lead", "prospect", "customer"):
                continue
            if referrers and rng.random() < 0.1:
                referrer = rng.choice(referrers)
                if referrer is not person:
                    person.links.append((referrer, "referred_by", _NOTES["referred_by"][country]))


def _relationships(people: list[_Person]) -> list[RelationshipSeed]:
    """Each link once: a link and its inverse are one relationship, which the service stores
    in both directions (a second request for either is a 409)."""
    seen: set[tuple[int, int, str]] = set()
    links: list[RelationshipSeed] = []
    for person in people:
        for other, kind, note in person.links:
            key = (person.index, other.index, kind)
            if other is person or key in seen:
                continue
            seen.update({key, (other.index, person.index, RELATIONSHIP_INVERSES[kind])})
            links.append(RelationshipSeed(person.index, other.index, kind, note))
    return links


def _contact_body(gen: _Generator, person: _Person) -> dict[str, Any]:
    rng = gen.rng
    country, city = person.country, person.city
    business = person.account is not None
    source, channel, _ = (
        _pick(rng, _BUSINESS_SOURCES) if business else _pick(rng, _CONSUMER_SOURCES[country])
    )
    if any(kind == "referred_by" for _, kind, _ in person.links):
        source, channel = "referral", "referral"
    tags: list[str] = [city.tag]
    attributes: dict[str, Any] = {}
    external_ids: dict[str, str] = {}
    phones: list[dict[str, Any]] = [
        {"number": gen.phone(country), "type": "mobile", "primary": True}
    ]
    emails: list[dict[str, Any]] = []
    if business or rng.random() < 0.85:
        emails.append({"email": gen.email(person), "primary": True})
    if country == "TH":
        if source == "line_oa" or rng.random() < 0.45:
            tags.append("line-oa")
            attributes["line_id"] = f"{person.given_roman}.{person.family_roman[:2]}"
            if rng.random() < 0.5:
                attributes["line_id"] += str(rng.randrange(10, 99))
        if rng.random() < 0.7:
            attributes["nickname"] = rng.choice(_TH_NICKNAMES[person.gender])
        preferred = "line" if "line-oa" in tags else rng.choice(("phone", "email"))
    else:
        if source == "zalo_oa" or rng.random() < 0.5:
            tags.append("zalo")
            # Zalo accounts are found by their phone number.
            national = phonenumbers.parse(phones[0]["number"], "VN").national_number
            attributes["zalo_id"] = f"0{national}"
        preferred = "zalo" if "zalo" in tags else rng.choice(("phone", "email"))
    attributes["preferred_channel"] = preferred if emails or preferred != "email" else "phone"
    if business:
        attributes["job_title"] = rng.choice(_JOB_TITLES[country])
        tags.append("b2b")
        account_type = next(row[4] for row in _ACCOUNTS if row[0] == person.account)
        if account_type in ("distributor", "retailer"):
            tags.append("wholesale")
        if rng.random() < 0.5:
            phones.append({"number": gen.phone(country, city.landline), "type": "work"})
    if emails and rng.random() < 0.4:
        tags.append("newsletter")
    if person.stage in ("customer", "advocate", "ambassador") and rng.random() < 0.12:
        tags.append("vip")
    if channel == "marketplace" or source == "website":
        tags.append("online")
    if source == "walk_in":
        tags.append("in-store")
        external_ids["pos"] = f"{city.store_code}-{gen.next_number('pos', 100000):06d}"
    if source == "website" or (channel == "marketplace" and rng.random() < 0.3):
        external_ids["shopify"] = str(gen.next_number("shopify", 7781234500000))
    if person.stage == "churned":
        attributes["churn_reason"] = rng.choice(_CHURN_REASONS)
    addresses: list[dict[str, Any]] = []
    if person.stage != "lead" or rng.random() < 0.3:
        addresses.append(person.address)
        if "online" in tags and rng.random() < 0.25:
            addresses.append(gen.address(city, kind="shipping"))
    body: dict[str, Any] = {
        "given_name": person.given,
        "family_name": person.family,
        "emails": emails,
        "phones": phones,
        "locale": "th-TH" if country == "TH" else "vi-VN",
        "time_zone": "Asia/Bangkok" if country == "TH" else "Asia/Ho_Chi_Minh",
        "addresses": addresses,
        "lifecycle_stage": person.stage,
        "tags": tags,
        "attributes": attributes,
        "external_ids": external_ids,
        "acquisition_source": source,
        "acquisition_channel": channel,
    }
    if rng.random() < 0.8 or person.links:
        body["birthday"] = person.birthday.isoformat()
    if business or person.stage in ("lead", "prospect") or rng.random() < 0.3:
        body["owner_id"] = rng.choice(_OWNERS[country])
    return body


# -- loading ---------------------------------------------------------------------------------
async def load(session: AsyncSession, auth: AuthContext, data: DemoData) -> DemoCounts:
    """Create the accounts, contacts and links of ``data`` in the workspace of ``auth``.

    Raises:
        CRMError: a record the API would refuse (a problem naming the field).
    """
    account_ids: dict[str, uuid.UUID] = {}
    for seed in data.accounts:
        body = dict(seed.body)
        if seed.parent is not None:
            body["parent_account_id"] = str(account_ids[seed.parent])
        created = await account_service.create(session, auth, parse_input(AccountCreate, body))
        account_ids[seed.key] = created.id
    contact_ids: list[uuid.UUID] = []
    for item in data.contacts:
        body = dict(item.body)
        if item.account is not None:
            body["account_id"] = str(account_ids[item.account])
        contact = await contact_service.create(session, auth, parse_input(ContactCreate, body))
        contact_ids.append(contact.id)
    for link in data.relationships:
        request = {"related_contact_id": str(contact_ids[link.related]), "type": link.type}
        if link.note is not None:
            request["note"] = link.note
        await relationship_service.create(
            session, auth, contact_ids[link.contact], parse_input(RelationshipCreate, request)
        )
    loyalty = await enrol_members(session, auth, contact_ids, data.seed)
    history = await load_history(session, auth, data.history, contact_ids)
    await redeem_some(session, auth, loyalty, data.seed)
    await load_sales(session, auth, contact_ids, [item.country for item in data.contacts])
    # The case mix depends on the contacts only, so a seed always gives the same desk.
    cases = await load_cases(session, auth, contact_ids, seed=len(contact_ids))
    return DemoCounts(
        accounts=len(account_ids),
        contacts=len(contact_ids),
        relationships=len(data.relationships),
        interactions=history.interactions,
        purchases=history.purchases,
        refunds=history.refunds,
        loyalty_members=len(loyalty.accounts),
        redemptions=loyalty.redemptions,
        cases=cases,
    )


async def create_demo_workspace(
    session: AsyncSession,
    *,
    contacts: int = DEFAULT_CONTACTS,
    seed: int = DEFAULT_SEED,
    name: str = DEMO_WORKSPACE_NAME,
) -> DemoWorkspace:
    """A new workspace with its admin key, filled with ``generate(contacts, seed)``."""
    data = generate(contacts, seed)
    created = await workspace_service.create(session, name=name)
    auth = AuthContext(
        workspace_id=created.workspace.id,
        api_key_id=created.admin_key.record.id,
        scopes=frozenset({Scope.admin.value}),
    )
    counts = await load(session, auth, data)
    return DemoWorkspace(created=created, counts=counts)
