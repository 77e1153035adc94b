"""One synthetic patient and stay, drawn the same way for generated records and imported MIMIC notes.

Callers seed `fake` and `rng` per record; the draws below happen in a fixed order, so the same seeds
give the same person. Changing that order changes every generated record.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from faker import Faker


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

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def los(self) -> int:
        """Length of stay in days."""
        return (self.discharge - self.admit).days


def first_name(fake: Faker, sex: str) -> str:
    return fake.first_name_male() if sex == "Male" else fake.first_name_female()


def doctor_name(fake: Faker) -> str:
    return f"{fake.first_name()} {fake.last_name()}"


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
                admitted: tuple[dt.date, dt.date], stay_days: tuple[int, int],
                hospital_kinds: tuple[str, ...]) -> Person:
    """A person of `sex` aged within `ages`, admitted within `admitted` for a stay within `stay_days`."""
    first = first_name(fake, sex)
    last = fake.last_name()
    age = rng.randint(*ages)
    admit = fake.date_between(*admitted)
    discharge = admit + dt.timedelta(days=rng.randint(*stay_days))
    dob = birth_date(rng, admit, age)
    mrn = str(rng.randint(1_000_000, 9_999_999))
    attending = doctor_name(fake)
    hospital = f"{fake.last_name()} {rng.choice(hospital_kinds)}"
    return Person(sex, first, last, age, admit, discharge, dob, mrn, attending, hospital, fake.city(),
                  phone_number(fake))
