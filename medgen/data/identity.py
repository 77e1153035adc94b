"""One synthetic patient and stay, drawn the same way for generated records and imported MIMIC notes.

Callers seed `fake` and `rng` per record; the draws below happen in a fixed order, so the same seeds
give the same person. Changing that order changes every generated record.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from faker import Faker

from medgen.data.phi import names, places


@dataclass(frozen=True)
class Person:
    """A patient, their stay, and the people and places around it."""

    sex: str  # "Male" or "Female"
    first: str
    last: str
    age: int
    admit: dt.date
    discharge: dt.date
    dob: dt.date
    mrn: str
    attending: str
    hospital: str
    city: str
    phone: str
    state: str = "MA"  # the city's, as a postal code
    zip: str = "02115"  # a ZIP code of the city

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def los(self) -> int:
        """Length of stay in days."""
        return (self.discharge - self.admit).days


def doctor_name(fake: Faker) -> str:
    return names.full_name(fake.random)


def phone_number(fake: Faker) -> str:
    return fake.numerify("(###) ###-####")


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February, in a year without one
        return day.replace(year=day.year - years, day=28)


def birth_date(rng: random.Random, admit: dt.date, age: int) -> dt.date:
    """A birthday that makes the patient exactly `age` on the day of admission, counted in calendar years (365-day
    years drift a day every four years, which put some birthdays a year off the stated age)."""
    latest = _years_before(admit, age)
    earliest = _years_before(admit, age + 1) + dt.timedelta(days=1)
    return earliest + dt.timedelta(days=rng.randint(0, (latest - earliest).days))


def draw_person(fake: Faker, rng: random.Random, sex: str, ages: tuple[int, int],
                admitted: tuple[dt.date, dt.date], stay_days: tuple[int, int]) -> Person:
    """A person of `sex` aged within `ages`, admitted within `admitted` for a stay within `stay_days`, living in a
    real US city (medgen.data.phi.places), treated in a hospital named as hospitals are."""
    first, last = names.full_name(fake.random, sex).split(" ", 1)
    age = rng.randint(*ages)
    admit = fake.date_between(*admitted)
    discharge = admit + dt.timedelta(days=rng.randint(*stay_days))
    dob = birth_date(rng, admit, age)
    mrn = str(rng.randint(1_000_000, 9_999_999))
    attending = doctor_name(fake)
    hospital = places.hospital(rng)
    home = places.city(rng)
    return Person(sex, first, last, age, admit, discharge, dob, mrn, attending, hospital, home.name,
                  phone_number(fake), home.state, home.zip)
