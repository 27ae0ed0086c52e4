"""Text normalization (the built-in ``normalize`` preprocessor) against written
expectations: English, German, French and Spanish, and text that must stay as it is."""

from __future__ import annotations

import pytest

from ttsframe.core.interfaces.preprocessor import TextContext
from ttsframe.core.voices.voice import Voice
from ttsframe.plugins.normalize import NormalizeConfig, TextNormalizer
from ttsframe.plugins.normalize.rules import normalize_text
from ttsframe.testing.app import app_client, make_services

# (language, written, spoken). A row whose two texts are equal must stay unchanged.
CASES = [
    ("en", 'I have 3 apples.', 'I have three apples.'),
    ("en", 'There are 42 of them.', 'There are forty-two of them.'),
    ("en", '1,234 people', 'one thousand two hundred and thirty-four people'),
    ("en", '1,000,000 stars', 'one million stars'),
    ("en", 'It weighs 0.5 tons.', 'It weighs zero point five tons.'),
    ("en", 'Pi is 3.14.', 'Pi is three point one four.'),
    ("en", 'Version 2 is out.', 'Version two is out.'),
    ("en", 'Zero is 0.', 'Zero is zero.'),
    ("en", 'He is 100.', 'He is one hundred.'),
    ("en", '2 + 2 = 4', 'two plus two equals four'),
    ("en", 'It was -5 today.', 'It was minus five today.'),
    ("en", 'The balance is -12.5.', 'The balance is minus twelve point five.'),
    ("en", 'Minus \u22123 here.', 'Minus minus three here.'),
    ("en", 'He came 1st.', 'He came first.'),
    ("en", 'She was 2nd.', 'She was second.'),
    ("en", 'The 3rd time.', 'The third time.'),
    ("en", 'On the 4th day.', 'On the fourth day.'),
    ("en", 'The 21st century.', 'The twenty-first century.'),
    ("en", 'The 102nd floor.', 'The one hundred and second floor.'),
    ("en", '11th hour', 'eleventh hour'),
    ("en", '23rd', 'twenty-third'),
    ("en", 'Pages 10-20.', 'Pages ten to twenty.'),
    ("en", 'Ages 5\u20137.', 'Ages five to seven.'),
    ("en", 'From 1.5-2.5 litres', 'From one point five to two point five litres'),
    ("en", 'Add 1/2 cup.', 'Add one half cup.'),
    ("en", 'About 3/4 done.', 'About three quarters done.'),
    ("en", 'Only 1/3 left.', 'Only one third left.'),
    ("en", 'Roughly 2/3 of them.', 'Roughly two thirds of them.'),
    ("en", 'Cut 5/8 inch.', 'Cut five eighths inch.'),
    ("en", '1/4 of a mile', 'one quarter of a mile'),
    ("en", 'Growth was 12.5%.', 'Growth was twelve point five percent.'),
    ("en", '100% sure.', 'one hundred percent sure.'),
    ("en", 'A 5 % drop.', 'A five percent drop.'),
    ("en", 'It fell -3%.', 'It fell minus three percent.'),
    ("en", 'It costs $5.', 'It costs five dollars.'),
    ("en", 'Pay $12.50 now.', 'Pay twelve dollars and fifty cents now.'),
    ("en", 'Only $0.99!', 'Only ninety-nine cents!'),
    ("en", 'Raised $1.5m.', 'Raised one point five million dollars.'),
    ("en", 'A $2bn deal.', 'A two billion dollars deal.'),
    ("en", 'Worth $3k.', 'Worth three thousand dollars.'),
    ("en", '£3.50 each.', 'three pounds and fifty pence each.'),
    ("en", '€20 please.', 'twenty euros please.'),
    ("en", '20 EUR total.', 'twenty euros total.'),
    ("en", 'USD 100 fee.', 'one hundred dollars fee.'),
    ("en", '¥500 coins.', 'five hundred yen coins.'),
    ("en", '₹250 only.', 'two hundred and fifty rupees only.'),
    ("en", 'Lost -$40.', 'Lost minus forty dollars.'),
    ("en", '$1 bill', 'one dollar bill'),
    ("en", '$1,234.56 due',
     'one thousand two hundred and thirty-four dollars and fifty-six cents due'),
    ("en", 'Born 2024-03-15.', 'Born March fifteenth, twenty twenty-four.'),
    ("en", 'Due 1999-12-31.', 'Due December thirty-first, nineteen ninety-nine.'),
    ("en", 'On 03/15/2024 we left.', 'On March fifteenth, twenty twenty-four we left.'),
    ("en", 'On 7/4/1776 it began.', 'On July fourth, seventeen seventy-six it began.'),
    ("en", 'Meet at 3:30 pm.', 'Meet at three thirty p m.'),
    ("en", 'Wake at 7:05.', 'Wake at seven oh five.'),
    ("en", 'Lunch at 12:00.', "Lunch at twelve o'clock."),
    ("en", 'At 14:45 sharp.', 'At fourteen forty-five sharp.'),
    ("en", 'At 9:00 am.', 'At nine a m.'),
    ("en", "At 10:00 o'clock", "At ten o'clock"),
    ("en", 'In 1999 we met.', 'In nineteen ninety-nine we met.'),
    ("en", 'Since 2010 things changed.', 'Since twenty ten things changed.'),
    ("en", 'By 2050 it ends.', 'By twenty fifty it ends.'),
    ("en", 'It was 2000 BC.', 'It was two thousand B C.'),
    ("en", 'Around 1066 AD.', 'Around ten sixty-six A D.'),
    ("en", 'The 1990s were fun.', 'The nineteen nineties were fun.'),
    ("en", 'The 80s too.', 'The eighties too.'),
    ("en", "Back in the '60s.", 'Back in the sixties.'),
    ("en", 'The 1900s.', 'The nineteen hundreds.'),
    ("en", 'From 1914-1918 war raged.', 'From nineteen fourteen to nineteen eighteen war raged.'),
    ("en", 'In 2005 it rained.', 'In two thousand and five it rained.'),
    ("en", 'Call 555-123-4567.', 'Call five five five, one two three, four five six seven.'),
    ("en", 'Call (555) 123-4567.', 'Call five five five, one two three, four five six seven.'),
    ("en", 'Dial +1 555-123-4567.',
     'Dial plus one, five five five, one two three, four five six seven.'),
    ("en", 'Or 555.123.4567 today.',
     'Or five five five, one two three, four five six seven today.'),
    ("en", 'Run 5 km.', 'Run five kilometers.'),
    ("en", 'It is 1 km away.', 'It is one kilometer away.'),
    ("en", 'Lift 10kg.', 'Lift ten kilograms.'),
    ("en", 'Add 250 ml.', 'Add two hundred and fifty milliliters.'),
    ("en", 'It was 72°F.', 'It was seventy-two degrees Fahrenheit.'),
    ("en", 'Water boils at 100 °C.', 'Water boils at one hundred degrees Celsius.'),
    ("en", 'Go 60 mph.', 'Go sixty miles per hour.'),
    ("en", 'He is 6 ft tall.', 'He is six feet tall.'),
    ("en", 'A 3.5 GB file.', 'A three point five gigabytes file.'),
    ("en", 'At 2.4 GHz.', 'At two point four gigahertz.'),
    ("en", 'Wait 500 ms.', 'Wait five hundred milliseconds.'),
    ("en", 'Drive 100 km/h.', 'Drive one hundred kilometers per hour.'),
    ("en", 'A 100 W bulb.', 'A one hundred watts bulb.'),
    ("en", 'It is -10°C.', 'It is minus ten degrees Celsius.'),
    ("en", '1 lb of meat.', 'one pound of meat.'),
    ("en", '5 lbs of meat.', 'five pounds of meat.'),
    ("en", 'Grab 2 L.', 'Grab two liters.'),
    ("en", 'A 12 V battery.', 'A twelve volts battery.'),
    ("en", '3k followers', 'three thousand followers'),
    ("en", '2 million people', 'two million people'),
    ("en", '1.2 billion users', 'one point two billion users'),
    ("en", 'Dr. Smith is here.', 'Doctor Smith is here.'),
    ("en", 'Mr. and Mrs. Jones.', 'Mister and Missus Jones.'),
    ("en", 'Ms. Brown spoke.', 'Miz Brown spoke.'),
    ("en", 'Prof. Lee teaches.', 'Professor Lee teaches.'),
    ("en", 'Main St. is busy.', 'Main Street is busy.'),
    ("en", 'St. Louis is big.', 'Saint Louis is big.'),
    ("en", 'Mt. Everest is high.', 'Mount Everest is high.'),
    ("en", 'Cats vs. dogs.', 'Cats versus dogs.'),
    ("en", 'Apples, pears, etc.', 'Apples, pears, et cetera.'),
    ("en", 'Fruit, e.g. apples.', 'Fruit, for example apples.'),
    ("en", 'That, i.e. this.', 'That, that is this.'),
    ("en", 'It is approx. done.', 'It is approximately done.'),
    ("en", 'Room No. 5 is free.', 'Room number five is free.'),
    ("en", 'John Jr. is here.', 'John Junior is here.'),
    ("en", 'Capt. Kirk speaks.', 'Captain Kirk speaks.'),
    ("en", 'Visit https://www.example.com/docs today.',
     'Visit www dot example dot com slash docs today.'),
    ("en", 'See www.example.org.', 'See www dot example dot org.'),
    ("en", 'Mail john.doe@example.com now.', 'Mail john dot doe at example dot com now.'),
    ("en", 'Go to http://test.io/a_b.', 'Go to test dot io slash a underscore b.'),
    ("en", 'Write to me@site.co.uk please.', 'Write to me at site dot co dot uk please.'),
    ("en", 'Tom & Jerry', 'Tom and Jerry'),
    ("en", 'Rock&roll', 'Rock and roll'),
    ("en", 'Me @ home', 'Me at home'),
    ("en", 'A + B', 'A plus B'),
    ("en", 'x = y', 'x equals y'),
    ("en", 'Item #5 sold.', 'Item number five sold.'),
    ("en", 'Use C++ here.', 'Use C++ here.'),
    ("en", 'Salt & pepper & more', 'Salt and pepper and more'),
    ("en", '[S1] I got 2 (laughs) [S2] Ha.', '[S1] I got two (laughs) [S2] Ha.'),
    ("en", '[S1] It is 5% (sighs) fine.', '[S1] It is five percent (sighs) fine.'),
    ("en", '(clears throat) 3 things.', '(clears throat) three things.'),
    ("en", '[S2] (laughs) [S1] 10 dogs.', '[S2] (laughs) [S1] ten dogs.'),
    ("en", 'Hello, world.', 'Hello, world.'),
    ("en", 'Nothing to change here!', 'Nothing to change here!'),
    ("en", 'What? No way.', 'What? No way.'),
    ("en", 'The cat sat on the mat.', 'The cat sat on the mat.'),
    ("en", "It's a dog's life.", "It's a dog's life."),
    ("en", 'See the docs (section two).', 'See the docs (section two).'),
    ("en", 'No digits at all.', 'No digits at all.'),
    ("en", 'Mr Smith without a dot.', 'Mr Smith without a dot.'),
    ("en", 'He said no. Then left.', 'He said no. Then left.'),
    ("en", 'The end.', 'The end.'),
    ("en", 'Is it St James or not', 'Is it St James or not'),
    ('de', 'Ich habe 3 Äpfel.', 'Ich habe drei Äpfel.'),
    ('de', 'Es kostet 12,50 €.', 'Es kostet zwölf Euro und fünfzig Cent.'),
    ('de', 'Das sind 1.234 Leute.', 'Das sind eintausendzweihundertvierunddreißig Leute.'),
    ('de', 'Es sind 3,5 Liter.', 'Es sind drei Komma fünf Liter.'),
    ('de', 'Um 50% gestiegen.', 'Um fünfzig Prozent gestiegen.'),
    ('de', 'Es waren -3 Grad.', 'Es waren minus drei Grad.'),
    ('de', 'Er ist 21.', 'Er ist einundzwanzig.'),
    ('de', 'Das kostet 20 EUR.', 'Das kostet zwanzig Euro.'),
    ('de', 'Nichts zu ändern.', 'Nichts zu ändern.'),
    ('de', '[S1] Ich habe 2 (laughs) Hunde.', '[S1] Ich habe zwei (laughs) Hunde.'),
    ('de', 'Im Jahr 2024.', 'Im Jahr zweitausendvierundzwanzig.'),
    ('de', 'Genau 0,75 Meter.', 'Genau null Komma sieben fünf Meter.'),
    ('de', 'Sie zählt bis 100.', 'Sie zählt bis einhundert.'),
    ('de', 'Das sind 1.000.000 Sterne.', 'Das sind eine Million Sterne.'),
    ('de', 'Tom & Jerry', 'Tom und Jerry'),
    ('fr', "J'ai 3 pommes.", "J'ai trois pommes."),
    ('fr', 'Ça coûte 12,50 €.', 'Ça coûte douze euros et cinquante centimes.'),
    ('fr', 'Il y a 1.234 personnes.', 'Il y a mille deux cent trente-quatre personnes.'),
    ('fr', 'Environ 3,5 litres.', 'Environ trois virgule cinq litres.'),
    ('fr', 'Une hausse de 50%.', 'Une hausse de cinquante pour cent.'),
    ('fr', 'Il fait -3 degrés.', 'Il fait moins trois degrés.'),
    ('fr', 'Elle a 21 ans.', 'Elle a vingt et un ans.'),
    ('fr', 'Total 20 EUR.', 'Total vingt euros.'),
    ('fr', 'Rien à changer.', 'Rien à changer.'),
    ('fr', "[S1] J'ai 2 (laughs) chiens.", "[S1] J'ai deux (laughs) chiens."),
    ('fr', 'En 2024.', 'En deux mille vingt-quatre.'),
    ('fr', 'Exactement 0,75 mètre.', 'Exactement zéro virgule sept cinq mètre.'),
    ('fr', "Jusqu'à 100.", "Jusqu'à cent."),
    ('fr', 'Il y a 80 chats.', 'Il y a quatre-vingts chats.'),
    ('fr', 'Tom & Jerry', 'Tom et Jerry'),
    ('es', 'Tengo 3 manzanas.', 'Tengo tres manzanas.'),
    ('es', 'Cuesta 12,50 €.', 'Cuesta doce euros con cincuenta céntimos.'),
    ('es', 'Hay 1.234 personas.', 'Hay mil doscientos treinta y cuatro personas.'),
    ('es', 'Unos 3,5 litros.', 'Unos tres punto cinco litros.'),
    ('es', 'Subió un 50%.', 'Subió un cincuenta por ciento.'),
    ('es', 'Hace -3 grados.', 'Hace menos tres grados.'),
    ('es', 'Total 20 EUR.', 'Total veinte euros.'),
    ('es', 'Nada que cambiar.', 'Nada que cambiar.'),
    ('es', '[S1] Tengo 2 (laughs) perros.', '[S1] Tengo dos (laughs) perros.'),
    ('es', 'En 2024.', 'En dos mil veinticuatro.'),
    ('es', 'Exactamente 0,75 metros.', 'Exactamente cero punto siete cinco metros.'),
    ('es', 'Hasta 100.', 'Hasta cien.'),
    ('es', 'Hay 16 gatos.', 'Hay dieciséis gatos.'),
    ('es', 'Tom & Jerry', 'Tom y Jerry'),
]


def test_the_table_is_large_and_holds_unchanged_rows():
    assert len(CASES) >= 150
    assert sum(1 for _, written, spoken in CASES if written == spoken) >= 15
    assert {lang for lang, _, _ in CASES} == {"en", "de", "fr", "es"}


@pytest.mark.parametrize(("lang", "written", "spoken"), CASES,
                         ids=[f"{lang}-{written[:30]}" for lang, written, _ in CASES])
def test_normalizes_as_written(lang, written, spoken):
    assert normalize_text(written, lang) == spoken


def test_day_first_dates():
    assert normalize_text("On 03/04/2025.", "en", "dmy") == "On April third, twenty twenty-five."
    assert normalize_text("On 03/04/2025.", "en", "mdy") == "On March fourth, twenty twenty-five."


def context(**fields) -> TextContext:
    return TextContext(role=None, voice=Voice(voice_id="v"), backend="dia", speaker_tags=True,
                       **fields)


def test_a_request_turns_it_off_and_on():
    on, off = TextNormalizer(), TextNormalizer(NormalizeConfig(enabled=False))
    assert on.process("3 cats", context()) == "three cats"
    assert on.process("3 cats", context(normalize=False)) == "3 cats"
    assert off.process("3 cats", context()) == "3 cats"
    assert off.process("3 cats", context(normalize=True)) == "three cats"


def test_the_request_language_chooses_the_number_words():
    normalizer = TextNormalizer()
    assert normalizer.process("3 Katzen", context(language="de-AT")) == "drei Katzen"
    assert normalizer.process("3 chats", context(language="fr")) == "trois chats"


def test_a_language_num2words_lacks_is_left_as_written_with_a_note():
    ctx = context(language="xx")
    assert TextNormalizer().process("3 things", ctx) == "3 things"
    assert any("no rules for language 'xx'" in w for w in ctx.warnings)


def test_the_backend_receives_normalized_text_unless_the_request_says_no(tmp_path):
    services = make_services(tmp_path)
    backend = services.backends["beeper"]
    with app_client(services) as client:
        body = {"text": "It costs $5 at 3:30 pm.", "voice_id": "alloy"}
        assert client.post("/generate", json=body).status_code == 200
        assert client.post("/generate", json={**body, "normalize": False}).status_code == 200
        reply = client.post("/v1/audio/speech", json={
            "input": "Wir haben 21 Hunde.", "voice": "alloy", "language": "de",
            "stream": False})
        assert reply.status_code == 200
    texts = [task.text for task in backend.tasks]
    assert texts[0].endswith("It costs five dollars at three thirty p m.")
    assert texts[1].endswith("It costs $5 at 3:30 pm.")
    assert texts[2].endswith("Wir haben einundzwanzig Hunde.")


def test_an_option_no_loaded_preprocessor_answers_is_named(tmp_path):
    services = make_services(tmp_path)
    with app_client(services) as client:
        reply = client.post("/text/preview", json={"text": "**Hi**", "chat_text": True})
    assert any("'chat_text' was asked for but no loaded text preprocessor does it" in w
               and "ttsframe-chattext" in w for w in reply.json()["warnings"])
