"""The one PHI category table: i2b2 2014 category ↔ HIPAA Safe Harbor identifier ↔ medgen markup code ↔ surrogate
maker.

Categories are named as `ELEMENT:TYPE` (the i2b2 2014 XML element and its TYPE attribute), or the element alone
where i2b2 has one type (`AGE`, `DATE`, `PROFESSION`). The markup (`[[code value]]`), the surrogate pass, the
importers and writers of i2b2 and BRAT, and evaluate all read this table. `TIME` and `OTHER` are medgen's own:
the MIMIC-IV-Note import types masked times and masks no rule recognises; neither is an i2b2 2014 category.

HIPAA identifiers are Safe Harbor's 18 (45 CFR 164.514(b)(2)(i)); a category i2b2 tags beyond them (a state, a
profession, a clinician's name) says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    name: str  # "NAME:PATIENT", "AGE"
    code: str  # the markup code: [[patient Jane Doe]]
    hipaa: str  # the Safe Harbor identifier it falls under, or why it is tagged beyond them
    maker: str  # the surrogate maker that replaces its values (medgen.data.phi.surrogates.MAKERS)

    @property
    def element(self) -> str:
        return self.name.partition(":")[0]

    @property
    def type(self) -> str:
        return self.name.partition(":")[2] or self.name

    @property
    def i2b2(self) -> bool:
        return self.name not in EXTRA


_NAMES, _GEO = "(A) names", "(B) geographic subdivisions smaller than a state"
_OTHER_ID = "(R) any other unique identifying number, characteristic or code"
EXTRA = ("TIME", "OTHER")

CATEGORIES: tuple[Category, ...] = (
    Category("NAME:PATIENT", "patient", _NAMES + " (the patient's and relatives')", "name"),
    Category("NAME:DOCTOR", "doctor", "beyond Safe Harbor: clinicians' names (i2b2)", "name"),
    Category("NAME:USERNAME", "username", _OTHER_ID, "username"),
    Category("PROFESSION", "profession", "beyond Safe Harbor: occupation (i2b2)", "profession"),
    Category("LOCATION:ROOM", "room", _GEO + " (i2b2: a room or bed)", "code"),
    Category("LOCATION:DEPARTMENT", "department", _GEO + " (i2b2: a named unit or ward)", "place"),
    Category("LOCATION:HOSPITAL", "hospital", _GEO + " (i2b2: a facility)", "place"),
    Category("LOCATION:ORGANIZATION", "organization", _GEO + " (i2b2: a company, agency or pharmacy)", "place"),
    Category("LOCATION:STREET", "street", _GEO, "street"),
    Category("LOCATION:CITY", "city", _GEO, "city"),
    Category("LOCATION:STATE", "state", "beyond Safe Harbor: a state (i2b2)", "state"),
    Category("LOCATION:COUNTRY", "country", "beyond Safe Harbor: a country (i2b2)", "country"),
    Category("LOCATION:ZIP", "zip", _GEO + " (ZIP codes)", "code"),
    Category("LOCATION:LOCATION-OTHER", "location", _GEO, "place"),
    Category("AGE", "age", "(C) ages over 89 (i2b2 tags every age)", "age"),
    Category("DATE", "date", "(C) dates, except the year alone (i2b2 tags years too)", "date"),
    Category("CONTACT:PHONE", "phone", "(D) telephone numbers", "code"),
    Category("CONTACT:FAX", "fax", "(E) fax numbers", "code"),
    Category("CONTACT:EMAIL", "email", "(F) email addresses", "email"),
    Category("CONTACT:URL", "url", "(N) web URLs", "url"),
    Category("CONTACT:IPADDR", "ip", "(O) IP addresses", "ip"),
    Category("ID:SSN", "ssn", "(G) Social Security numbers", "code"),
    Category("ID:MEDICALRECORD", "mrn", "(H) medical record numbers", "code"),
    Category("ID:HEALTHPLAN", "healthplan", "(I) health plan beneficiary numbers", "code"),
    Category("ID:ACCOUNT", "account", "(J) account numbers", "code"),
    Category("ID:LICENSE", "license", "(K) certificate and license numbers", "code"),
    Category("ID:VEHICLE", "vehicle", "(L) vehicle identifiers and license plates", "code"),
    Category("ID:DEVICE", "device", "(M) device identifiers and serial numbers", "code"),
    Category("ID:BIOID", "bioid", "(P) biometric identifiers", "code"),
    Category("ID:IDNUM", "idnum", _OTHER_ID, "code"),
    Category("TIME", "time", "not PHI: a time of day (medgen's MIMIC import)", "keep"),
    Category("OTHER", "other", "unknown: a MIMIC mask no rule typed (medgen's MIMIC import)", "name"),
)

BY_NAME: dict[str, Category] = {c.name: c for c in CATEGORIES}
BY_CODE: dict[str, Category] = {c.code: c for c in CATEGORIES}
# Names an older manifest or another tool may use for the same category.
ALIASES = {"ID:MRN": "ID:MEDICALRECORD", "CONTACT:IPADDRESS": "CONTACT:IPADDR", "LOCATION:OTHER": "LOCATION:LOCATION-OTHER"}
I2B2 = tuple(c for c in CATEGORIES if c.i2b2)


def category(name: str) -> Category:
    """The category called `name` (or an alias of it); KeyError names the known ones."""
    try:
        return BY_NAME[ALIASES.get(name, name)]
    except KeyError:
        raise KeyError(f"unknown PHI category {name!r}; expected one of {', '.join(BY_NAME)}") from None


def i2b2_category(element: str, type_: str) -> Category:
    """The category of an i2b2 2014 tag (element, TYPE); KeyError says what it expected."""
    element, type_ = element.upper(), type_.upper()
    for name in (f"{element}:{type_}", element if element == type_ or not type_ else ""):
        if name in BY_NAME and BY_NAME[name].i2b2:
            return BY_NAME[name]
    types = sorted({c.type for c in I2B2 if c.element == element})
    expected = f"one of {', '.join(types)}" if types else f"an element among {', '.join(sorted({c.element for c in I2B2}))}"
    raise KeyError(f"<{element} TYPE={type_!r}>: expected {expected}")
