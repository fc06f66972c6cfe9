"""Generated accounts that look like a European/US B2B shop's customer base: companies and consumers in seven
countries, real city names with a skewed distribution (a few big cities hold many accounts), local phone and
postcode formats, company and free-mail e-mail addresses, one billing address each. Deterministic per seed."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from accountdesk.accounts.service import search_text_for


@dataclass(frozen=True)
class Country:
    code: str
    language: str
    currency: str
    legal_forms: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]  # (city, area code)
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    streets: tuple[str, ...]
    tld: str
    phone_prefix: str


COUNTRIES = (
    Country("DE", "de", "EUR", ("GmbH", "GmbH & Co. KG", "AG", "KG", "e.K."),
            (("Berlin", "30"), ("Hamburg", "40"), ("München", "89"), ("Köln", "221"), ("Frankfurt am Main", "69"),
             ("Stuttgart", "711"), ("Düsseldorf", "211"), ("Leipzig", "341"), ("Dortmund", "231"), ("Essen", "201"),
             ("Bremen", "421"), ("Dresden", "351"), ("Hannover", "511"), ("Nürnberg", "911"), ("Duisburg", "203"),
             ("Bochum", "234"), ("Wuppertal", "202"), ("Bielefeld", "521"), ("Bonn", "228"), ("Münster", "251"),
             ("Mannheim", "621"), ("Karlsruhe", "721"), ("Augsburg", "821"), ("Wiesbaden", "611"),
             ("Freiburg im Breisgau", "761"), ("Kiel", "431"), ("Rostock", "381"), ("Erfurt", "361"),
             ("Heidelberg", "6221"), ("Göttingen", "551")),
            ("Anna", "Lukas", "Sophie", "Jonas", "Marie", "Felix", "Laura", "Maximilian", "Lena", "Paul", "Julia",
             "Leon", "Katharina", "Tobias", "Sabine", "Jürgen", "Ursula", "Stefan", "Monika", "Andreas"),
            ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
             "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
             "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause", "Meier", "Lehmann"),
            ("Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schulstraße", "Dorfstraße", "Lindenweg",
             "Industriestraße", "Am Markt", "Kirchweg", "Friedrichstraße"), "de", "+49"),
    Country("FR", "fr", "EUR", ("SARL", "SAS", "SA", "EURL"),
            (("Paris", "1"), ("Marseille", "4"), ("Lyon", "4"), ("Toulouse", "5"), ("Nice", "4"), ("Nantes", "2"),
             ("Strasbourg", "3"), ("Montpellier", "4"), ("Bordeaux", "5"), ("Lille", "3"), ("Rennes", "2"),
             ("Reims", "3"), ("Le Havre", "2"), ("Saint-Étienne", "4"), ("Toulon", "4"), ("Grenoble", "4"),
             ("Dijon", "3"), ("Angers", "2"), ("Nîmes", "4"), ("Clermont-Ferrand", "4")),
            ("Camille", "Louis", "Manon", "Hugo", "Chloé", "Lucas", "Léa", "Arthur", "Inès", "Jules", "Émilie",
             "Nicolas", "Isabelle", "Pierre", "Nathalie", "François"),
            ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
             "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier"),
            ("rue de la République", "avenue Jean Jaurès", "rue Victor Hugo", "boulevard Pasteur", "rue de la Gare",
             "place de l'Église", "rue du Moulin", "chemin des Vignes"), "fr", "+33"),
    Country("GB", "en", "GBP", ("Ltd", "PLC", "LLP", "& Sons Ltd"),
            (("London", "20"), ("Birmingham", "121"), ("Manchester", "161"), ("Leeds", "113"), ("Glasgow", "141"),
             ("Sheffield", "114"), ("Liverpool", "151"), ("Bristol", "117"), ("Edinburgh", "131"), ("Cardiff", "29"),
             ("Leicester", "116"), ("Nottingham", "115"), ("Newcastle upon Tyne", "191"), ("Southampton", "23"),
             ("Brighton", "1273"), ("Oxford", "1865"), ("Cambridge", "1223"), ("York", "1904")),
            ("Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Jack", "Emily", "Charlie", "Sophia", "James",
             "Margaret", "David", "Susan", "William", "Elizabeth"),
            ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson", "Wright",
             "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke"),
            ("High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane", "Manor Road", "Park Avenue",
             "Mill Lane", "Queens Road", "Kings Road"), "co.uk", "+44"),
    Country("US", "en", "USD", ("Inc.", "LLC", "Corp.", "Co."),
            (("New York", "212"), ("Los Angeles", "213"), ("Chicago", "312"), ("Houston", "713"), ("Phoenix", "602"),
             ("Philadelphia", "215"), ("San Antonio", "210"), ("San Diego", "619"), ("Dallas", "214"),
             ("Austin", "512"), ("Seattle", "206"), ("Denver", "303"), ("Boston", "617"), ("Portland", "503"),
             ("Atlanta", "404"), ("Miami", "305"), ("Minneapolis", "612"), ("Nashville", "615"),
             ("Salt Lake City", "801"), ("Pittsburgh", "412")),
            ("Liam", "Olivia", "Noah", "Emma", "Ethan", "Mia", "Mason", "Harper", "Logan", "Ella", "Michael",
             "Jennifer", "Robert", "Linda", "Daniel", "Patricia"),
            ("Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Anderson", "Moore",
             "Lee", "Perez", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Young", "Allen", "King", "Scott"),
            ("Main Street", "Oak Street", "Maple Avenue", "Cedar Lane", "Elm Street", "Washington Avenue",
             "Lake Drive", "Pine Street", "Sunset Boulevard", "Broadway"), "com", "+1"),
    Country("NL", "en", "EUR", ("B.V.", "N.V.", "V.O.F."),
            (("Amsterdam", "20"), ("Rotterdam", "10"), ("Den Haag", "70"), ("Utrecht", "30"), ("Eindhoven", "40"),
             ("Groningen", "50"), ("Tilburg", "13"), ("Almere", "36"), ("Breda", "76"), ("Nijmegen", "24")),
            ("Daan", "Emma", "Sem", "Julia", "Lucas", "Tess", "Finn", "Sophie", "Levi", "Anouk", "Pieter", "Sanne"),
            ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit",
             "Meijer", "de Boer", "Mulder", "de Groot", "Bos", "Vos"),
            ("Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenweg", "Schoolstraat", "Nieuwstraat"), "nl", "+31"),
    Country("IT", "en", "EUR", ("S.r.l.", "S.p.A.", "S.n.c."),
            (("Roma", "6"), ("Milano", "2"), ("Napoli", "81"), ("Torino", "11"), ("Palermo", "91"), ("Genova", "10"),
             ("Bologna", "51"), ("Firenze", "55"), ("Bari", "80"), ("Verona", "45")),
            ("Giulia", "Francesco", "Sofia", "Alessandro", "Aurora", "Lorenzo", "Martina", "Matteo", "Chiara",
             "Leonardo", "Giuseppe", "Maria"),
            ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco",
             "Bruno", "Gallo", "Conti", "De Luca", "Costa"),
            ("Via Roma", "Via Garibaldi", "Corso Italia", "Via Mazzini", "Piazza del Duomo", "Via Dante"), "it", "+39"),
    Country("ES", "en", "EUR", ("S.L.", "S.A.", "S.L.U."),
            (("Madrid", "91"), ("Barcelona", "93"), ("Valencia", "96"), ("Sevilla", "95"), ("Zaragoza", "976"),
             ("Málaga", "952"), ("Murcia", "968"), ("Palma", "971"), ("Bilbao", "94"), ("Alicante", "965")),
            ("Lucía", "Hugo", "Martina", "Mateo", "Paula", "Daniel", "Sofía", "Pablo", "Carmen", "Javier",
             "Isabel", "Antonio"),
            ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
             "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno"),
            ("Calle Mayor", "Calle Real", "Avenida de la Constitución", "Calle del Sol", "Plaza de España",
             "Calle Nueva"), "es", "+34"),
)
# Share of accounts per country (DE-heavy, as a German-founded shop would be).
COUNTRY_WEIGHTS = (34, 16, 16, 14, 8, 6, 6)
INDUSTRIES = ("Logistik", "Metallbau", "Elektrotechnik", "Holzbau", "Transport", "Consulting", "Trading", "Foods",
              "Engineering", "Systems", "Pharma", "Textiles", "Print", "Solutions", "Hardware", "Software", "Supplies",
              "Automotive", "Medical", "Optics", "Packaging", "Plastics", "Catering", "Energy", "Bau", "Handel")
FREEMAIL = ("gmail.com", "outlook.com", "yahoo.com", "gmx.de", "web.de", "orange.fr", "icloud.com", "proton.me")
ROLES = ("info", "orders", "accounts", "purchasing", "contact", "office", "buyer")
GROUPS = ("", "", "retail", "wholesale", "wholesale", "vip", "education", "public")
NATIONAL_DIGITS = {"FR": 9, "NL": 9, "ES": 9}  # subscriber number length including the area code
EPOCH = datetime(2019, 1, 1, tzinfo=UTC)


def slug(text: str, sep: str = "") -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = ("".join(c for c in word if c.isalnum()) for word in ascii_text.lower().split())
    return sep.join(w for w in words if w)


def _cumulative_city_weights(country: Country) -> list[float]:
    # Zipf-like: the first city of each country holds about as many accounts as the next three together.
    weights, total = [], 0.0
    for rank in range(len(country.cities)):
        total += 1 / (rank + 1)
        weights.append(total)
    return weights


CITY_WEIGHTS = {c.code: _cumulative_city_weights(c) for c in COUNTRIES}


def _phone(rng: random.Random, country: Country, area: str) -> str:
    digits = NATIONAL_DIGITS.get(country.code, 10) - len(area)
    local = f"{rng.randrange(10 ** (digits - 1), 10 ** digits)}"
    if country.code == "US":
        return f"{country.phone_prefix} {area} {local[:3]}-{local[3:]}"
    return f"{country.phone_prefix} {area} {local}"


def _postcode(rng: random.Random, country: Country) -> str:
    match country.code:
        case "GB":
            return f"{rng.choice('BCEGLMNSW')}{rng.choice('CEHNRW')}{rng.randint(1, 20)} {rng.randint(1, 9)}" \
                   f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        case "NL":
            return f"{rng.randint(1000, 9999)} {rng.choice('ABCDEGHJKLMNPRST')}{rng.choice('ABCDEGHJKLMNPRST')}"
        case "US":
            return f"{rng.randint(10000, 99999)}"
        case _:
            return f"{rng.randint(1000, 99999):05d}"


def _street(rng: random.Random, country: Country) -> str:
    street, number = rng.choice(country.streets), rng.randint(1, 240)
    return f"{number} {street}" if country.code in ("FR", "GB", "US") else f"{street} {number}"


def generate(count: int, seed: int = 20240611) -> Iterator[tuple[dict, dict]]:
    """(account row, billing-address row) pairs with ids 1..count, every NOT NULL column filled, and the
    search_text the app would compute (accountdesk.accounts.service.search_text_for)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    span = (now - EPOCH).total_seconds()
    for account_id in range(1, count + 1):
        country = rng.choices(COUNTRIES, cum_weights=_CUM_COUNTRY)[0]
        city, area = rng.choices(country.cities, cum_weights=CITY_WEIGHTS[country.code])[0]
        first, last = rng.choice(country.first_names), rng.choice(country.last_names)
        draw = rng.random()
        kind = "b2c" if draw < 0.25 else ("reseller" if draw > 0.99 else "b2b")
        if kind == "b2c":
            name = f"{first} {last}"
            email = f"{slug(first)}.{slug(last)}{rng.randint(1, 9999)}@{rng.choice(FREEMAIL)}"
        else:
            shape = rng.random()
            if shape < 0.45:
                core = f"{last} {rng.choice(INDUSTRIES)}"
            elif shape < 0.7:
                core = f"{last} & {rng.choice(country.last_names)}"
            else:
                core = f"{rng.choice(INDUSTRIES)} {city.split()[0]} {rng.choice(INDUSTRIES)}"
            name = f"{core} {rng.choice(country.legal_forms)}"
            local = rng.choice(ROLES) if rng.random() < 0.6 else f"{slug(first)}.{slug(last)}"
            email = f"{local}@{slug(core, '-')}{rng.randint(1, 999)}.{country.tld}"
        number = f"W{account_id:06d}"
        phone = _phone(rng, country, area)
        erp_code = f"C{account_id + 500000:07d}" if rng.random() < 0.3 else None
        status = rng.choices(("active", "inactive", "pending_approval"), cum_weights=(95, 99, 100))[0]
        created = EPOCH + timedelta(seconds=span * account_id / (count + 1))
        account = {
            "id": account_id, "number": number, "name": name, "kind": kind, "status": status,
            "storefront_id": None, "parent_reseller_id": None, "email": email, "phone": phone,
            "preferred_language": country.language, "customer_group": rng.choice(GROUPS), "price_group": "",
            "rep_code": f"R{rng.randint(1, 40):02d}", "payment_method": "invoice" if kind != "b2c" else "credit_card",
            "payment_terms": "30 days" if kind != "b2c" else "", "currency": country.currency,
            "prorate_billing": False, "billing_day": 1, "partial_charges_invoicing": "next_invoice",
            "auto_invoice_email": True, "order_approval_required": False, "may_become_reseller": False,
            "erp_code": erp_code, "credit_limit": None,
            "search_text": search_text_for(name, number, email, phone, erp_code, [city]),
            "created_at": created, "updated_at": created,
        }
        address = {
            "id": account_id, "account_id": account_id, "label": "Billing", "line1": _street(rng, country),
            "line2": "", "city": city, "region": "", "postcode": _postcode(rng, country), "country": country.code,
            "is_billing": True, "is_shipping": True,
        }
        yield account, address


_CUM_COUNTRY = [sum(COUNTRY_WEIGHTS[: i + 1]) for i in range(len(COUNTRY_WEIGHTS))]
ACCOUNT_COLUMNS = tuple(next(generate(1))[0])
ADDRESS_COLUMNS = tuple(next(generate(1))[1])
