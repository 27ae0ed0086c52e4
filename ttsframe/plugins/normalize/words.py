"""The words the normalization rules put around numbers (number words come from num2words).

Only English has units, months, abbreviations and address words; the other languages
num2words speaks get the few words its number rules need.
"""

from __future__ import annotations

import re

VOCABULARY: dict[str, dict[str, str]] = {
    "en": {"minus": "minus", "percent": "percent", "and": "and", "at": "at",
           "plus": "plus", "equals": "equals", "number": "number"},
    "de": {"minus": "minus", "percent": "Prozent", "and": "und", "at": "at",
           "plus": "plus", "equals": "gleich", "number": "Nummer"},
    "fr": {"minus": "moins", "percent": "pour cent", "and": "et", "at": "arobase",
           "plus": "plus", "equals": "égale", "number": "numéro"},
    "es": {"minus": "menos", "percent": "por ciento", "and": "y", "at": "arroba",
           "plus": "más", "equals": "igual a", "number": "número"},
}

# Languages that write a decimal comma and group thousands with a dot.
DECIMAL_COMMA = frozenset({"de", "fr", "es", "it", "pt", "nl", "pl", "ru", "cs", "da", "sv",
                           "fi", "no", "tr", "ro", "hu", "id", "uk", "sk", "sl", "hr"})

SYMBOL_WORDS = {"&": "and", "@": "at", "+": "plus", "=": "equals", "#": "number"}

# Characters that make a piece of text worth running the rules on (besides digits).
TRIGGERS = frozenset("$€£¥₹%&@+=#/:")

ADDRESS_SYMBOLS = {".": "dot", "/": "slash", "_": "underscore", "-": "dash", "@": "at",
                   ":": "colon", "?": "question mark", "=": "equals", "&": "and"}

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

DECADES = {1: "tens", 2: "twenties", 3: "thirties", 4: "forties", 5: "fifties",
           6: "sixties", 7: "seventies", 8: "eighties", 9: "nineties"}

SCALES = {"k": "thousand", "thousand": "thousand", "m": "million", "million": "million",
          "b": "billion", "bn": "billion", "billion": "billion", "tn": "trillion",
          "trillion": "trillion"}

CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}

# code: (one, many, one hundredth, many hundredths)
CURRENCY_NAMES = {
    "USD": ("dollar", "dollars", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "JPY": ("yen", "yen", "sen", "sen"),
    "INR": ("rupee", "rupees", "paisa", "paise"),
    "CHF": ("Swiss franc", "Swiss francs", "centime", "centimes"),
    "CAD": ("Canadian dollar", "Canadian dollars", "cent", "cents"),
    "AUD": ("Australian dollar", "Australian dollars", "cent", "cents"),
}

# Written unit -> (one, many). Case matters: "m" is metres, "M" is not a unit here.
UNITS = {
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit",
                                                        "degrees Fahrenheit"),
    "°K": ("kelvin", "kelvins"), "K": ("kelvin", "kelvins"),
    "mm": ("millimeter", "millimeters"), "cm": ("centimeter", "centimeters"),
    "m": ("meter", "meters"), "km": ("kilometer", "kilometers"),
    "mg": ("milligram", "milligrams"), "g": ("gram", "grams"), "kg": ("kilogram", "kilograms"),
    "ml": ("milliliter", "milliliters"), "mL": ("milliliter", "milliliters"),
    "l": ("liter", "liters"), "L": ("liter", "liters"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"), "m/s": ("meter per second",
                                                        "meters per second"),
    "ft": ("foot", "feet"), "mi": ("mile", "miles"), "yd": ("yard", "yards"),
    "lb": ("pound", "pounds"), "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"),
    "gal": ("gallon", "gallons"),
    "ms": ("millisecond", "milliseconds"), "s": ("second", "seconds"),
    "min": ("minute", "minutes"), "h": ("hour", "hours"), "hr": ("hour", "hours"),
    "hrs": ("hours", "hours"),
    "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"),
    "KB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"), "TB": ("terabyte", "terabytes"),
    "W": ("watt", "watts"), "kW": ("kilowatt", "kilowatts"), "kWh": ("kilowatt hour",
                                                                   "kilowatt hours"),
    "V": ("volt", "volts"), "mAh": ("milliamp hour", "milliamp hours"),
}
# Longest first, so "km/h" wins over "km" and "kWh" over "kW".
UNIT_PATTERN = "|".join(re.escape(u) for u in sorted(
    (u for u in UNITS if not u.startswith("°")), key=len, reverse=True))

ABBREVIATIONS = {
    "dr": "Doctor", "mr": "Mister", "mrs": "Missus", "ms": "Miz", "prof": "Professor",
    "jr": "Junior", "sr": "Senior", "st": "Saint", "mt": "Mount", "vs": "versus",
    "etc": "et cetera", "e.g": "for example", "i.e": "that is", "approx": "approximately",
    "no": "number", "dept": "department", "gov": "governor", "gen": "General",
    "capt": "Captain", "lt": "Lieutenant", "sgt": "Sergeant", "ave": "Avenue",
}
# Abbreviations that always precede a name: their dot never ends a sentence.
TITLES = frozenset({"dr", "mr", "mrs", "ms", "prof", "st", "mt", "capt", "lt", "sgt", "gen",
                    "gov", "no"})
ABBREVIATION_PATTERN = (
    r"\b(?:Dr|Mr|Mrs|Ms|Prof|Jr|Sr|St|Mt|Capt|Lt|Sgt|Gen|Gov|Dept|Ave)\.(?=\s|$)"
    r"|\bvs\.?(?=\s)|\betc\.|\be\.g\.|\bi\.e\.|\bapprox\.|\bNo\.(?=\s?\d)")
ABBREVIATION_HINT = re.compile(ABBREVIATION_PATTERN)
