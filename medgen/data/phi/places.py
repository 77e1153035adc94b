"""Where PHI places come from: real US city, state and ZIP combinations (as i2b2's surrogates use), facility and
organization names made of the common words institutions are named with, hospital units, rooms and beds, and the
occupations and countries social histories name.

Data and small drawing functions only, shared by the synthetic engine and the surrogate pass. Every function takes
a `random.Random` and returns a string.
"""

from __future__ import annotations

import random
from typing import NamedTuple


class City(NamedTuple):
    name: str
    state: str  # two-letter code
    zip: str  # a ZIP code of that city


STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho",
    "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine",
    "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi",
    "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota",
    "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}
# Abbreviations notes use beside the postal codes.
STATE_ABBREVIATIONS = {"MA": "Mass.", "CA": "Calif.", "PA": "Penn.", "CT": "Conn.", "NY": "N.Y.", "NH": "N.H.",
                       "NJ": "N.J.", "FL": "Fla.", "IL": "Ill.", "MI": "Mich.", "TX": "Tex.", "WA": "Wash."}

CITIES: tuple[City, ...] = tuple(City(*row) for row in (
    ("Boston", "MA", "02115"), ("Cambridge", "MA", "02139"), ("Worcester", "MA", "01608"), ("Springfield", "MA", "01103"),
    ("Lowell", "MA", "01852"), ("Brockton", "MA", "02301"), ("Quincy", "MA", "02169"), ("Lynn", "MA", "01901"),
    ("Framingham", "MA", "01702"), ("Newton", "MA", "02458"), ("Somerville", "MA", "02143"), ("Salem", "MA", "01970"),
    ("Fall River", "MA", "02720"), ("New Bedford", "MA", "02740"), ("Pittsfield", "MA", "01201"),
    ("Providence", "RI", "02903"), ("Warwick", "RI", "02886"), ("Hartford", "CT", "06103"),
    ("New Haven", "CT", "06510"), ("Bridgeport", "CT", "06604"), ("Stamford", "CT", "06901"),
    ("Burlington", "VT", "05401"), ("Manchester", "NH", "03101"), ("Nashua", "NH", "03060"),
    ("Portland", "ME", "04101"), ("Bangor", "ME", "04401"), ("Albany", "NY", "12207"), ("Buffalo", "NY", "14202"),
    ("Rochester", "NY", "14604"), ("Syracuse", "NY", "13202"), ("Yonkers", "NY", "10701"), ("Brooklyn", "NY", "11201"),
    ("Bronx", "NY", "10451"), ("Newark", "NJ", "07102"), ("Trenton", "NJ", "08608"), ("Camden", "NJ", "08102"),
    ("Philadelphia", "PA", "19104"), ("Pittsburgh", "PA", "15213"), ("Harrisburg", "PA", "17101"),
    ("Allentown", "PA", "18101"), ("Erie", "PA", "16501"), ("Scranton", "PA", "18503"), ("Wilmington", "DE", "19801"),
    ("Baltimore", "MD", "21201"), ("Silver Spring", "MD", "20910"), ("Richmond", "VA", "23219"),
    ("Norfolk", "VA", "23510"), ("Roanoke", "VA", "24011"), ("Charleston", "WV", "25301"),
    ("Raleigh", "NC", "27601"), ("Durham", "NC", "27701"), ("Charlotte", "NC", "28202"), ("Asheville", "NC", "28801"),
    ("Greensboro", "NC", "27401"), ("Columbia", "SC", "29201"), ("Greenville", "SC", "29601"),
    ("Atlanta", "GA", "30303"), ("Savannah", "GA", "31401"), ("Augusta", "GA", "30901"), ("Macon", "GA", "31201"),
    ("Jacksonville", "FL", "32202"), ("Tampa", "FL", "33602"), ("Orlando", "FL", "32801"), ("Miami", "FL", "33130"),
    ("Gainesville", "FL", "32601"), ("Tallahassee", "FL", "32301"), ("Birmingham", "AL", "35203"),
    ("Montgomery", "AL", "36104"), ("Mobile", "AL", "36602"), ("Jackson", "MS", "39201"),
    ("Nashville", "TN", "37203"), ("Memphis", "TN", "38103"), ("Knoxville", "TN", "37902"),
    ("Chattanooga", "TN", "37402"), ("Louisville", "KY", "40202"), ("Lexington", "KY", "40507"),
    ("Cincinnati", "OH", "45202"), ("Cleveland", "OH", "44113"), ("Columbus", "OH", "43215"), ("Toledo", "OH", "43604"),
    ("Akron", "OH", "44308"), ("Dayton", "OH", "45402"), ("Detroit", "MI", "48226"), ("Ann Arbor", "MI", "48104"),
    ("Grand Rapids", "MI", "49503"), ("Lansing", "MI", "48933"), ("Flint", "MI", "48502"),
    ("Indianapolis", "IN", "46204"), ("Fort Wayne", "IN", "46802"), ("South Bend", "IN", "46601"),
    ("Chicago", "IL", "60611"), ("Peoria", "IL", "61602"), ("Rockford", "IL", "61101"), ("Evanston", "IL", "60201"),
    ("Milwaukee", "WI", "53202"), ("Madison", "WI", "53703"), ("Green Bay", "WI", "54301"),
    ("Minneapolis", "MN", "55401"), ("Saint Paul", "MN", "55102"), ("Duluth", "MN", "55802"),
    ("Rochester", "MN", "55902"), ("Des Moines", "IA", "50309"), ("Cedar Rapids", "IA", "52401"),
    ("Omaha", "NE", "68102"), ("Lincoln", "NE", "68508"), ("Fargo", "ND", "58102"), ("Sioux Falls", "SD", "57104"),
    ("Kansas City", "MO", "64106"), ("St. Louis", "MO", "63101"), ("Springfield", "MO", "65806"),
    ("Wichita", "KS", "67202"), ("Topeka", "KS", "66603"), ("Tulsa", "OK", "74103"), ("Oklahoma City", "OK", "73102"),
    ("Little Rock", "AR", "72201"), ("New Orleans", "LA", "70112"), ("Baton Rouge", "LA", "70801"),
    ("Shreveport", "LA", "71101"), ("Dallas", "TX", "75201"), ("Houston", "TX", "77002"), ("Austin", "TX", "78701"),
    ("San Antonio", "TX", "78205"), ("El Paso", "TX", "79901"), ("Fort Worth", "TX", "76102"),
    ("Lubbock", "TX", "79401"), ("Albuquerque", "NM", "87102"), ("Santa Fe", "NM", "87501"),
    ("Denver", "CO", "80202"), ("Colorado Springs", "CO", "80903"), ("Boulder", "CO", "80302"),
    ("Salt Lake City", "UT", "84101"), ("Provo", "UT", "84601"), ("Phoenix", "AZ", "85004"), ("Tucson", "AZ", "85701"),
    ("Mesa", "AZ", "85201"), ("Las Vegas", "NV", "89101"), ("Reno", "NV", "89501"), ("Boise", "ID", "83702"),
    ("Billings", "MT", "59101"), ("Cheyenne", "WY", "82001"), ("Seattle", "WA", "98101"), ("Spokane", "WA", "99201"),
    ("Tacoma", "WA", "98402"), ("Portland", "OR", "97205"), ("Eugene", "OR", "97401"), ("Salem", "OR", "97301"),
    ("Sacramento", "CA", "95814"), ("San Francisco", "CA", "94102"), ("Oakland", "CA", "94612"),
    ("San Jose", "CA", "95113"), ("Fresno", "CA", "93721"), ("Los Angeles", "CA", "90012"),
    ("San Diego", "CA", "92101"), ("Long Beach", "CA", "90802"), ("Riverside", "CA", "92501"),
    ("Bakersfield", "CA", "93301"), ("Anchorage", "AK", "99501"), ("Honolulu", "HI", "96813"),
))

# Words institutions are named with: places and landscapes, saints, and faith or civic names.
PLACE_WORDS = ("Lakeshore", "Riverside", "Hillcrest", "Northshore", "Bayview", "Fairview", "Pinecrest", "Oakwood",
                "Maplewood", "Cedar Ridge", "Summit", "Valley", "Highland", "Meadowbrook", "Brookside", "Westfield",
                "Eastside", "Greenfield", "Clearwater", "Stonebridge", "Silver Lake", "Elmwood", "Parkview",
                "Lakeview", "Crestwood", "Sunrise", "Harbor", "Mountain View", "Prairie", "Heartland", "Tri-County",
                "Tri-City", "North Valley", "South Shore", "Bay State", "Pioneer Valley", "Cape Cod", "Blue Ridge",
                "Golden Valley", "Twin Rivers", "Three Rivers", "Willow Creek", "Sandy Hill", "Granite State",
                "Evergreen", "Redwood", "Seaside", "Canyon", "Midland", "Hudson Valley", "Piedmont", "Coastal",
                "Metro", "Central", "Northern", "Southern", "Eastern", "Western", "Upstate", "Capital", "Mid-State")
_SAINTS = ("St. Brigid's", "St. Anne's", "St. Luke's", "St. Vincent's", "St. Francis", "St. Joseph's", "St. Mary's",
           "St. Elizabeth's", "St. Jude", "St. Catherine's", "St. Agnes", "St. Patrick's", "St. Clare's",
           "St. Raphael's", "Our Lady of Mercy", "Our Lady of the Lake", "Sacred Heart", "Holy Cross", "Holy Family")
_CIVIC = ("Mercy", "Good Samaritan", "Providence", "Baptist", "Methodist", "Presbyterian", "Lutheran", "Adventist",
          "Memorial", "Beth Shalom", "Shriners", "Veterans", "University", "Children's", "Carney", "Union")
_HOSPITAL_KINDS = ("Hospital", "Medical Center", "Community Hospital", "Regional Medical Center", "General Hospital",
                   "Health Center", "Memorial Hospital", "Hospital Center", "Health System", "Rehabilitation Hospital",
                   "Medical Center", "Hospital")
_CLINIC_KINDS = ("Family Medicine", "Primary Care", "Health Center", "Community Health Center", "Medical Group",
                 "Internal Medicine Associates", "Cardiology Associates", "Family Practice", "Clinic",
                 "Urgent Care", "Physicians Group", "Pediatrics")
_ORG_KINDS = ("Home Health", "Home Care", "Visiting Nurse Association", "Hospice", "Dialysis Center", "Pharmacy",
              "Nursing and Rehabilitation Center", "Rehab and Skilled Nursing", "Senior Living", "Assisted Living",
              "Adult Day Health", "Medical Supply", "Public Schools", "Transit Authority", "Credit Union",
              "Council on Aging", "Recovery Center", "Food Bank", "Housing Authority", "Manufacturing",
              "Construction", "Logistics", "Insurance Agency", "Community College", "Water Department")


def city(rng: random.Random) -> City:
    return rng.choice(CITIES)


def state(rng: random.Random, code: str) -> str:
    """A state as notes write it: the postal code mostly, else the name or an old abbreviation."""
    roll = rng.random()
    if roll < 0.65:
        return code
    if roll < 0.9 or code not in STATE_ABBREVIATIONS:
        return STATES[code]
    return STATE_ABBREVIATIONS[code]


def zip_code(rng: random.Random, base: str) -> str:
    """The city's ZIP, a neighbour of it, or ZIP+4."""
    near = f"{max(int(base) + rng.randint(-8, 8), 501):05d}"
    return near if rng.random() < 0.85 else f"{near}-{rng.randint(0, 9999):04d}"


def _named(rng: random.Random, kinds: tuple[str, ...]) -> str:
    roll = rng.random()
    if roll < 0.45:
        stem = rng.choice(PLACE_WORDS)
    elif roll < 0.7:
        stem = rng.choice(_SAINTS)
    elif roll < 0.85:
        stem = rng.choice(_CIVIC)
    else:
        stem = city(rng).name
    # Not the stem's own word again ("Memorial Memorial Hospital").
    kind = rng.choice([k for k in kinds if stem.split()[-1] not in k.split()] or kinds)
    return f"{stem} {kind}"


def hospital(rng: random.Random) -> str:
    """A hospital named as hospitals are: "Lakeshore Community Hospital", "St. Brigid's Medical Center",
    "Mercy General Hospital", a city's name and a kind."""
    return _named(rng, _HOSPITAL_KINDS)


def clinic(rng: random.Random) -> str:
    """A practice or clinic (i2b2 counts these as hospitals): "Riverside Family Medicine", "Tri-County Primary Care"."""
    return _named(rng, _CLINIC_KINDS)


_SURNAMES = ("Sullivan", "Murphy", "Nguyen", "Patel", "Garcia", "Kowalski", "O'Brien", "Rossi", "Cohen", "Baker",
             "Walsh", "Fitzgerald", "Lopez", "Kim", "Schmidt", "Johnson", "Brennan", "Costa", "Dubois", "Miller")
_BUSINESSES = ("{s} & Sons Construction", "{s}'s Market", "{s} & {t} Law Offices", "{p} Auto Body", "{s}'s Diner",
               "{p} Landscaping", "{s} Brothers Moving", "{p} Hardware", "{s} Plumbing & Heating", "{p} Realty",
               "{s} & Associates", "{p} Bakery", "{s}'s Pharmacy", "{p} Family Dental", "{p} Credit Union")


def organization(rng: random.Random) -> str:
    """An agency, company, facility or pharmacy: "Tri-County Home Health", "Maplewood Nursing and Rehabilitation
    Center", "Sullivan & Sons Construction", "Murphy's Market"."""
    if rng.random() < 0.3:
        return rng.choice(_BUSINESSES).format(s=rng.choice(_SURNAMES), t=rng.choice(_SURNAMES),
                                              p=rng.choice(PLACE_WORDS))
    return _named(rng, _ORG_KINDS)


# Streets as US addresses name them: trees, ordinals, presidents, landmarks; a suffix spelled out or abbreviated.
STREET_WORDS = ("Main", "Maple", "Oak", "Elm", "Pine", "Cedar", "Washington", "Lincoln", "Jefferson", "Park", "Lake",
                "Hill", "Church", "Mill", "Spring", "Highland", "Water", "School", "Center", "Union", "Pleasant",
                "Prospect", "Summer", "Winter", "Chestnut", "Walnut", "Cherry", "Willow", "Birch", "Franklin",
                "Madison", "Adams", "Jackson", "Grant", "River", "Bridge", "Forest", "Meadow", "Sunset", "Ridge",
                "Valley", "Broad", "Market", "High", "North", "South", "Front", "Academy", "Harbor", "Beacon",
                "First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Tenth", "1st", "2nd", "3rd", "5th",
                "12th", "Martin Luther King Jr", "Old Mill", "Fox Run", "Country Club", "Cambridge", "Dorchester")
_STREET_KINDS = ("St", "St.", "Street", "Ave", "Ave.", "Avenue", "Rd", "Road", "Dr", "Drive", "Ln", "Lane", "Blvd",
                 "Way", "Ct", "Court", "Pl", "Place", "Terrace", "Circle", "Pkwy", "Hwy", "Path", "Row")
_APARTMENTS = ("Apt {n}", "Apt. {n}", "#{n}", "Unit {n}", "Apt {n}{l}", "Unit {l}", "Fl {f}", "Suite {n}")


def street(rng: random.Random) -> str:
    """A street address: "14 Maple Street", "221B Beacon St., Apt 3", "Route 9", "PO Box 512", or a bare street."""
    roll = rng.random()
    if roll < 0.05:
        return f"{rng.choice(('PO Box', 'P.O. Box'))} {rng.randint(1, 9999)}"
    if roll < 0.1:
        return f"{rng.choice(('Route', 'Rte', 'Rt.', 'Highway'))} {rng.randint(1, 128)}"
    name = f"{rng.choice(STREET_WORDS)} {rng.choice(_STREET_KINDS)}"
    if roll < 0.2:
        return name
    number = str(rng.choice((rng.randint(1, 99), rng.randint(100, 999), rng.randint(1000, 29999))))
    if rng.random() < 0.05:
        number += rng.choice("AB")
    address = f"{number} {name}"
    if rng.random() < 0.25:
        apartment = rng.choice(_APARTMENTS).format(n=rng.randint(1, 40), l=rng.choice("ABCD"), f=rng.randint(1, 9))
        address += rng.choice((", ", " ")) + apartment
    return address


# Occupations and countries of origin as social histories name them.
PROFESSIONS = ("teacher", "nurse", "carpenter", "electrician", "accountant", "truck driver", "mechanic", "cashier",
         "firefighter", "police officer", "plumber", "software engineer", "hairdresser", "bus driver",
         "construction worker", "chef", "janitor", "farmer", "pharmacist", "lawyer", "professor", "mail carrier",
         "waitress", "security guard", "home health aide", "social worker", "dental hygienist", "bank teller",
         "machinist", "welder", "landscaper", "real estate agent", "sales representative", "librarian", "barber",
         "paramedic", "veterinarian", "architect", "engineer", "pastor", "student", "custodian", "dispatcher",
         "painter", "roofer", "line cook", "daycare worker", "CNA", "RN", "EMT", "data analyst", "bookkeeper",
         "school bus driver", "warehouse worker", "forklift operator", "crossing guard", "court reporter")
COUNTRIES = ("Haiti", "Brazil", "Vietnam", "China", "India", "Mexico", "Guatemala", "El Salvador", "Dominican Republic",
              "Cape Verde", "Portugal", "Ireland", "Italy", "Poland", "Russia", "Ukraine", "Nigeria", "Ghana", "Kenya",
              "Ethiopia", "Somalia", "Cambodia", "Laos", "Philippines", "Korea", "Japan", "Jamaica", "Puerto Rico",
              "Colombia", "Peru", "Honduras", "Lebanon", "Iraq", "Canada", "Germany", "Greece")


_UNITS = ("MICU", "SICU", "CCU", "CVICU", "Neuro ICU", "Cardiac Step-Down", "Medical Step-Down", "PACU",
          "Labor and Delivery", "Short Stay Unit", "Observation Unit", "Oncology Unit", "Telemetry",
          "Surgical Floor", "Behavioral Health Unit", "Transitional Care Unit", "Burn Unit", "Bone Marrow Transplant Unit")


def unit(rng: random.Random) -> str:
    """A named hospital unit (i2b2's DEPARTMENT): "MICU", "7 North", "4 West Telemetry", "Cardiac Step-Down"."""
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(_UNITS)
    wing = f"{rng.randint(2, 12)} {rng.choice(('North', 'South', 'East', 'West', 'N', 'W'))}"
    if roll < 0.8:
        return wing
    return f"{wing} {rng.choice(('Telemetry', 'Medicine', 'Surgery', 'Oncology'))}"


def room(rng: random.Random) -> str:
    """A room or bed number: "714", "714-A", "12B", "3", "1120"."""
    n = rng.randint(2, 12) * 100 + rng.randint(1, 40)
    return rng.choice((str(n), f"{n}-{rng.choice('AB')}", f"{n}{rng.choice('AB')}", str(rng.randint(1, 24)),
                       f"{rng.randint(1, 24)}{rng.choice('AB')}", f"{n // 100}{rng.choice('ABCDEF')}",
                       str(rng.randint(1001, 1240))))
