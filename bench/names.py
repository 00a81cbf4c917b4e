"""Curated name parts for synthetic contacts: Thai (with RTGS romanisations for e-mail
addresses), Vietnamese (with real family-name frequencies) and some Latin names.

Thai names are compounds of Pali/Sanskrit-derived elements, so given and family names are
built from element lists (20 x 15 given names, 20 x 10 family names), which gives plausible
names such as สมชาย, ณัฐพล, กิตติศักดิ์ and แก้วมณี, ทองสุข, ศรีสวัสดิ์ — with tone marks
(่ ้), mai taikhu and thanthakhat (์), which the search key strips. Vietnamese names are
family + middle + given name, in NFC, the family name drawn by its real share (Nguyễn about
38 %), so searches range from very common to rare.

Every list is fixed, so a seed gives the same data everywhere.
"""

from __future__ import annotations

import unicodedata

# -- Thai ------------------------------------------------------------------------------------

# (Thai, romanisation) pairs.
THAI_GIVEN_HEADS: tuple[tuple[str, str], ...] = (
    ("สม", "som"),
    ("ชัย", "chai"),
    ("กิตติ", "kitti"),
    ("ณัฐ", "nat"),
    ("ธน", "thana"),
    ("สุ", "su"),
    ("ปิยะ", "piya"),
    ("ศิริ", "siri"),
    ("อนุ", "anu"),
    ("วิ", "wi"),
    ("จิร", "chira"),
    ("รัตน", "rattana"),
    ("พิม", "phim"),
    ("อร", "on"),
    ("ศุภ", "supha"),
    ("ธีร", "thira"),
    ("นภ", "napha"),
    ("กมล", "kamon"),
    ("พัช", "phat"),
    ("วร", "won"),
)
THAI_GIVEN_TAILS: tuple[tuple[str, str], ...] = (
    ("ชาย", "chai"),
    ("ศักดิ์", "sak"),
    ("พร", "phon"),
    ("พล", "phon"),
    ("วุฒิ", "wut"),
    ("ชัย", "chai"),
    ("ทิพย์", "thip"),
    ("ดา", "da"),
    ("วรรณ", "wan"),
    ("พงษ์", "phong"),
    ("รัตน์", "rat"),
    ("กานต์", "kan"),
    ("ภัทร", "phat"),
    ("นันท์", "nan"),
    ("ศรี", "si"),
)
THAI_FAMILY_HEADS: tuple[tuple[str, str], ...] = (
    ("ทอง", "thong"),
    ("แก้ว", "kaeo"),
    ("บุญ", "bun"),
    ("ใจ", "chai"),
    ("วงศ์", "wong"),
    ("พงษ์", "phong"),
    ("เพชร", "phet"),
    ("จันทร์", "chan"),
    ("อินทร์", "in"),
    ("มั่น", "man"),
    ("ดวง", "duang"),
    ("เรือง", "rueang"),
    ("ศักดิ์", "sak"),
    ("ศรี", "si"),
    ("รุ่ง", "rung"),
    ("เกียรติ", "kiat"),
    ("สิทธิ์", "sit"),
    ("ชื่น", "chuen"),
    ("นาค", "nak"),
    ("เลิศ", "loet"),
)
THAI_FAMILY_TAILS: tuple[tuple[str, str], ...] = (
    ("สุข", "suk"),
    ("ดี", "di"),
    ("มณี", "mani"),
    ("สวัสดิ์", "sawat"),
    ("เจริญ", "charoen"),
    ("ประเสริฐ", "prasoet"),
    ("สมบูรณ์", "sombun"),
    ("ไพบูลย์", "phaibun"),
    ("วัฒนา", "watthana"),
    ("รักษ์", "rak"),
)
# Imported lists often carry the title in the display name (นายสมชาย ใจดี).
THAI_TITLES: tuple[str, ...] = ("นาย", "นาง", "นางสาว", "คุณ")

# -- Vietnamese ------------------------------------------------------------------------------

# Less common family names, each given a small, decreasing share.
_RARER_FAMILIES: tuple[str, ...] = (
    "Đinh", "Đào", "Lưu", "Trương", "Mai", "Cao", "Lâm", "Trịnh", "Hà", "Tô",
    "Tạ", "Châu", "Quách", "Thái", "Kiều", "Phùng", "La", "Lương", "Tăng", "Từ",
    "Giang", "Khúc", "Mạc", "Vương", "Triệu", "Thân", "Tôn", "Nghiêm", "Đoàn", "Chu",
    "Diệp", "Doãn", "Hứa", "Hàn", "Lại", "Lục", "Ninh", "Ông", "Phó", "Thạch",
    "Tống", "Ung", "Vi", "Âu", "Bạch", "Cù", "Cung", "Đàm", "Đồng", "Hầu",
    "Khổng", "Kim", "Lò", "Lữ", "Mã", "Nông", "Phí", "Quan", "Tiêu", "Trình",
    "Bế", "Đường", "Khương", "Lã", "Liễu", "Nhan",
)  # fmt: skip
# (family name, share in per cent): the common ones at their published shares, the rest small.
VIETNAMESE_FAMILIES: tuple[tuple[str, float], ...] = (
    ("Nguyễn", 38.4),
    ("Trần", 11.0),
    ("Lê", 9.5),
    ("Phạm", 7.1),
    ("Hoàng", 3.5),
    ("Huỳnh", 2.6),
    ("Phan", 4.5),
    ("Vũ", 2.6),
    ("Võ", 2.3),
    ("Đặng", 2.1),
    ("Bùi", 2.0),
    ("Đỗ", 1.4),
    ("Hồ", 1.3),
    ("Ngô", 1.3),
    ("Dương", 1.0),
    ("Lý", 0.5),
    *((name, round(0.45 / (1 + index / 6), 3)) for index, name in enumerate(_RARER_FAMILIES)),
)
# (middle name, weight): Văn and Thị dominate.
VIETNAMESE_MALE_MIDDLES: tuple[tuple[str, float], ...] = (
    ("Văn", 30), ("Hữu", 6), ("Đức", 8), ("Minh", 9), ("Quang", 6), ("Công", 5),
    ("Đình", 5), ("Quốc", 5), ("Thành", 5), ("Xuân", 3), ("Hoàng", 5), ("Gia", 3),
    ("Anh", 3), ("Bảo", 3), ("Trọng", 3), ("Tuấn", 2),
)  # fmt: skip
VIETNAMESE_FEMALE_MIDDLES: tuple[tuple[str, float], ...] = (
    ("Thị", 40), ("Ngọc", 9), ("Thu", 6), ("Thanh", 6), ("Kim", 4), ("Mỹ", 4),
    ("Bích", 3), ("Hồng", 4), ("Phương", 4), ("Thùy", 4), ("Khánh", 3), ("Diệu", 2),
    ("Quỳnh", 3), ("Minh", 3), ("Hoài", 2),
)  # fmt: skip
VIETNAMESE_MALE_GIVEN: tuple[str, ...] = (
    "An", "Anh", "Bình", "Cường", "Dũng", "Duy", "Đạt", "Hải", "Hiếu", "Hoàng",
    "Hùng", "Huy", "Khánh", "Khoa", "Kiên", "Long", "Lâm", "Minh", "Nam", "Nghĩa",
    "Phong", "Phúc", "Quân", "Quang", "Sơn", "Tài", "Tâm", "Thắng", "Thành", "Thịnh",
    "Toàn", "Trí", "Trung", "Tuấn", "Tùng", "Việt", "Vinh", "Vũ", "Hưng", "Lộc",
    "Phát", "Đức", "Hậu", "Khang", "Nhân", "Thái", "Tiến", "Tú", "Bảo", "Công",
)  # fmt: skip
VIETNAMESE_FEMALE_GIVEN: tuple[str, ...] = (
    "An", "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa",
    "Hồng", "Huệ", "Hương", "Lan", "Linh", "Loan", "Ly", "Mai", "My", "Nga",
    "Ngân", "Ngọc", "Nhung", "Oanh", "Phương", "Quyên", "Quỳnh", "Tâm", "Thảo", "Thoa",
    "Thu", "Thủy", "Thúy", "Trang", "Trâm", "Tuyết", "Uyên", "Vân", "Vy", "Yến",
    "Xuân", "Nhi", "Diệp", "Hân", "Khuê", "Nhàn", "Duyên", "Châu", "Liên", "Lụa",
)  # fmt: skip

# -- Latin -----------------------------------------------------------------------------------

LATIN_GIVEN: tuple[str, ...] = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
    "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa",
    "Anthony", "Margaret", "Mark", "Sandra", "Paul", "Ashley", "Steven", "Emily",
    "Andrew", "Michelle", "Kenneth", "Amanda", "Kevin", "Melissa", "Brian", "Stephanie",
    "George", "Rebecca", "Timothy", "Laura", "Ronald", "Sharon", "Jason", "Cynthia",
    "Anna", "Lukas", "Sophie", "Jonas", "Emma", "Pierre", "Chloé", "Hiroshi",
    "Yuki", "Mei", "Wei", "Priya", "Arjun", "Zoe",
)  # fmt: skip
LATIN_FAMILY: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell",
    "Roberts", "Müller", "Schmidt", "Andersen", "Dubois", "Lefèvre", "Tanaka",
    "Suzuki", "Wang", "Chen", "Patel", "Sharma", "O'Brien", "Kowalski", "Novák",
    "Rossi", "Fernández", "Whitaker", "Quigley", "Okonkwo", "Lindqvist",
)  # fmt: skip


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def ascii_fold(text: str) -> str:
    """Nguyễn -> nguyen, Đặng -> dang, O'Brien -> obrien: for e-mail local parts."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def thai_given_names() -> list[tuple[str, str]]:
    """300 (ish) compound given names, (Thai, romanisation); repeated elements skipped."""
    return [
        (head + tail, roman_head + roman_tail)
        for head, roman_head in THAI_GIVEN_HEADS
        for tail, roman_tail in THAI_GIVEN_TAILS
        if head != tail
    ]


def thai_family_names() -> list[tuple[str, str]]:
    """200 compound family names, (Thai, romanisation)."""
    return [
        (head + tail, roman_head + roman_tail)
        for head, roman_head in THAI_FAMILY_HEADS
        for tail, roman_tail in THAI_FAMILY_TAILS
    ]
