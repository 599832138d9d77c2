"""Topic vocabularies of the synthetic audio-streaming platform.

Each topic has a genre label and a word list; titles and descriptions are written from them, so
text reveals an item's topic (part of the signal) but not the finer taste communities inside a
topic, which only co-consumption reveals (the part the graph must learn).
"""

TOPICS: dict[str, tuple[str, list[str]]] = {
    "true_crime": ("True Crime", "murder detective case evidence trial suspect witness cold forensic verdict jury heist fraud prison".split()),
    "history": ("History", "empire ancient war dynasty revolution medieval kingdom archive century pharaoh roman battle treaty colonial".split()),
    "science": ("Science", "physics quantum galaxy experiment molecule evolution genome particle universe chemistry fossil climate lab".split()),
    "technology": ("Technology", "software startup robot algorithm silicon data cloud gadget coding internet chip network engineer".split()),
    "business": ("Business", "market investor founder revenue stock economy leadership strategy brand negotiation profit venture".split()),
    "comedy": ("Comedy", "funny laugh jokes sketch improv roast awkward prank sitcom standup banter silly hilarious".split()),
    "health": ("Health & Fitness", "fitness workout nutrition sleep wellness running diet muscle meditation habit stress doctor".split()),
    "sports": ("Sports", "football league coach season playoff championship transfer goal athlete stadium match tennis".split()),
    "politics": ("News & Politics", "election policy senate campaign government debate vote congress minister diplomacy reform".split()),
    "music": ("Music", "album guitar band concert vinyl jazz rapper songwriter melody tour producer orchestra".split()),
    "fantasy": ("Fantasy", "dragon wizard sword realm prophecy elf quest magic throne sorcerer enchanted kingdom".split()),
    "romance": ("Romance", "love heart wedding passion affair duke summer kiss letters bride desire reunion".split()),
    "mystery": ("Mystery & Thriller", "secret vanished spy conspiracy shadow killer chase hostage island cipher betrayal agent".split()),
    "scifi": ("Science Fiction", "starship alien planet android colony cyborg dystopia warp orbit mars clone portal".split()),
    "self_help": ("Self-Help", "mindset motivation success productivity confidence purpose morning goals resilience focus growth".split()),
    "parenting": ("Kids & Family", "parenting toddler family school bedtime kids teen baby siblings mother father".split()),
    "food": ("Food", "recipe kitchen chef baking cuisine wine bread spice restaurant flavor dinner pastry".split()),
    "travel": ("Travel", "journey island backpack city road passport adventure mountain coast explorer voyage trail".split()),
    "religion": ("Religion & Spirituality", "faith prayer soul spirit scripture church monk zen gospel pilgrim sacred grace".split()),
    "language": ("Education", "spanish grammar vocabulary lesson fluent learn pronunciation verbs teacher course exam study".split()),
}

# Filler words: they dilute the topic signal in descriptions, as real copy does.
GENERIC_WORDS = (
    "the story of a life new weekly episode conversation guest interview host series "
    "season chapter edition special deep dive inside behind scenes real people world best "
    "ultimate guide everything about you need know today week stories voices hours"
).split()

PODCAST_TITLE_SUFFIXES = ["Podcast", "Show", "Hour", "Daily", "Radio", "Talk", "Weekly", "Club"]
AUDIOBOOK_TITLE_PATTERNS = [
    "The {a} of the {b}",
    "{a} and {b}",
    "A {a} Called {b}",
    "The Last {a}",
    "{a}: A Novel",
    "The {a} Guide to {b}",
]
LANGUAGES = ["en", "en", "en", "en", "en", "en", "es", "de", "sv", "pt"]
COUNTRIES = ["US", "US", "US", "GB", "GB", "DE", "SE", "ES", "MX", "BR", "CA", "AU"]
AGE_BUCKETS = ["18-24", "25-34", "35-44", "45-54", "55+"]
