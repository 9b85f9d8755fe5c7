"""Small Danish vocabularies for synthetic names, addresses, companies and texts.

Every value is invented; lists are short on purpose (the simulator combines them).
The privacy test of the warehouse scans for these names, so they live in one place.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Anne", "Mette", "Kirsten", "Hanne", "Helle", "Susanne", "Lene", "Maria", "Marianne", "Lone",
    "Camilla", "Pia", "Louise", "Charlotte", "Tina", "Julie", "Emma", "Sofie", "Ida", "Freja",
    "Peter", "Jens", "Lars", "Michael", "Henrik", "Thomas", "Søren", "Jan", "Niels", "Martin",
    "Jesper", "Rasmus", "Anders", "Mads", "Frederik", "Mikkel", "Kasper", "Christian", "Jakob", "Emil",
    "Ahmad", "Fatima", "Mohammad", "Aisha", "Omar", "Yasmin", "Piotr", "Agnieszka", "Ali", "Leyla",
)
LAST_NAMES = (
    "Nielsen", "Jensen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen",
    "Rasmussen", "Jørgensen", "Petersen", "Madsen", "Kristensen", "Olsen", "Thomsen", "Christiansen",
    "Poulsen", "Johansen", "Møller", "Mortensen", "Knudsen", "Jakobsen", "Mikkelsen", "Olesen",
    "Frederiksen", "Laursen", "Henriksen", "Lund", "Holm", "Schmidt", "Eriksen", "Kristiansen",
    "Nowak", "Hussein", "Yilmaz", "Ahmadi", "Kowalski", "Haddad",
)
STREETS = (
    "Vestergade", "Østergade", "Nørregade", "Søndergade", "Algade", "Jernbanegade", "Skolevej",
    "Kirkevej", "Industrivej", "Møllevej", "Strandvejen", "Åboulevarden", "Bredgade", "Havnegade",
    "Rådhuspladsen", "Stationsvej", "Engvej", "Skovvej", "Bakkevej", "Ågade",
)
POSTNUMRE = (
    ("1620", "København V"), ("2000", "Frederiksberg"), ("2300", "København S"), ("2630", "Taastrup"),
    ("3000", "Helsingør"), ("3400", "Hillerød"), ("4000", "Roskilde"), ("4700", "Næstved"),
    ("5000", "Odense C"), ("5700", "Svendborg"), ("6000", "Kolding"), ("6700", "Esbjerg"),
    ("7100", "Vejle"), ("7400", "Herning"), ("8000", "Aarhus C"), ("8600", "Silkeborg"),
    ("8900", "Randers C"), ("9000", "Aalborg"), ("9800", "Hjørring"), ("3700", "Rønne"),
)
COMPANY_STEMS = (
    "Nordisk Byg", "Fjordens Rengøring", "Dansk Logistik", "Vestjysk Metal", "Sjællands Pleje",
    "Havnens Værksted", "Grøn Omsorg", "Kystens Hotel", "Midtjysk Transport", "Bornholms Bageri",
    "Lyngby IT", "Fynsk Tømrer", "Aros Catering", "Limfjordens Fisk", "Øresund Service",
    "Himmerlands Landbrug", "Vejle Maskinfabrik", "Danske Ældrehjem", "Kolding Kontor", "Nordlys Butik",
)
COMPANY_SUFFIXES = ("ApS", "A/S", "I/S", "K/S", "")
SENTENCES = (
    "Borgeren ønsker at søge job inden for lager og logistik.",
    "Der er aftalt opfølgning om fire uger.",
    "Borgeren deltager i virksomhedspraktik og trives med det.",
    "Vi har drøftet muligheder for opkvalificering.",
    "Borgeren har udfyldt CV'et fyldestgørende.",
    "Næste skridt er at afklare helbredsforhold med egen læge.",
    "Borgeren er motiveret og søger bredt.",
    "Der er aftalt tre ansøgninger om ugen.",
    "Mentor støtter borgeren i den første tid på arbejdspladsen.",
    "Borgeren har fået tilbud om kursus i truckkørsel.",
    "Samtalen blev holdt telefonisk efter borgerens ønske.",
    "Planen er justeret efter aftale med borgeren.",
)
JOB_TITLES_FALLBACK = (
    "Lagerarbejder", "Sygeplejerske", "Pædagog", "Kontorassistent", "Tømrer", "Chauffør",
    "Butiksassistent", "Social- og sundhedshjælper", "Rengøringsassistent", "Kok",
)
