"""Word, name, place and user-agent lists the generator draws its values from."""

ADJECTIVES = (
    "Silver", "Broken", "Electric", "Golden", "Quiet", "Wild", "Velvet", "Hollow", "Crimson",
    "Lonely", "Midnight", "Neon", "Paper", "Burning", "Frozen", "Gentle", "Restless", "Distant",
    "Sweet", "Bitter", "Blue", "Black", "Bright", "Crystal", "Empty", "Faded", "Fallen", "Hidden",
    "Lucky", "Lost", "Northern", "Open", "Painted", "Perfect", "Secret", "Shallow", "Sleepy",
    "Strange", "Summer", "Tender", "Wicked", "Winter", "Young", "Ancient", "Cosmic", "Dusty",
    "Heavy", "Liquid", "Magnetic", "Savage", "Solar", "Stone", "Sunday", "Twisted", "Urban",
    "Violet", "Wooden", "Radio", "Glass", "Naïve",
)  # fmt: skip
NOUNS = (
    "Heart", "River", "Mountain", "Shadow", "Dream", "Fire", "Ocean", "Road", "Star", "City",
    "Garden", "Mirror", "Train", "Window", "Letter", "Horse", "Wolf", "Bird", "Ghost", "Rain",
    "Storm", "Thunder", "Moon", "Sun", "Sky", "Island", "Forest", "Desert", "Highway", "Harbor",
    "Kingdom", "Machine", "Engine", "Angel", "Stranger", "Lover", "Sailor", "Soldier", "Queen",
    "King", "Child", "Tiger", "Rose", "Diamond", "Bell", "Candle", "Lantern", "Echo", "Wave",
    "Valley", "Bridge", "Tower", "Castle", "Circus", "Carnival", "Planet", "Comet", "Signal",
    "Pilot", "Saint",
)  # fmt: skip
VERBS = (
    "Love", "Follow", "Remember", "Leave", "Hold", "Chase", "Call", "Miss", "Save", "Kiss",
    "Burn", "Carry", "Find", "Forget", "Wake", "Meet", "Trust", "Need", "Light", "Dance",
)  # fmt: skip
ACCENTED_TITLES = (
    "Café", "Déjà Vu", "Mañana", "Señorita", "Über Alles", "Fiancée", "Cliché", "Piñata",
    "Rêverie", "Noël", "Jalapeño", "Ça Plane Pour Moi", "Sólo Tú", "Smörgåsbord",
)  # fmt: skip
ACCENTED_ARTISTS = (
    "Beyoncé", "Sigur Rós", "Björk", "Mötley Crüe", "Céline Dion", "Zoë Keating",
    "Ólafur Arnalds", "Röyksopp", "Motörhead", "Maná", "Café Tacvba", "Hüsker Dü",
    "Blue Öyster Cult", "Édith Piaf", "Mónica Naranjo", "Måneskin",
)  # fmt: skip
FEMALE_NAMES = (
    "Lily", "Chloé", "Zoë", "Jacqueline", "Kate", "Ava", "Sophia", "Renée", "Inés", "Mia",
    "Layla", "Tegan", "Aleena", "Anabelle", "Brianna", "Kinsley", "Madison", "Elena", "Noémie",
    "Harper", "Katherine", "Lucía", "Amélie", "Olivia", "Emma", "Kaylee", "Sara", "Jordyn",
)  # fmt: skip
MALE_NAMES = (
    "Jacob", "Ryan", "Liam", "Jayden", "Aiden", "Kevin", "Matthew", "Sebastián", "José",
    "Noël", "Björn", "Søren", "Tom", "Wyatt", "Connar", "Mohammad", "Chase", "Theo", "Andrés",
    "Joaquín", "Lucas", "Ethan", "Owen", "Jordan", "Zachary", "Rayden", "Marcus", "Diego",
)  # fmt: skip
LAST_NAMES = (
    "Koch", "Smith", "Lynch", "Levine", "Williams", "Cruz", "Young", "Moreno", "Muñoz", "Peña",
    "Müller", "García", "Brontë", "O'Brien", "Nuñez", "Johnson", "Harrell", "Ramirez", "Porter",
    "Chen", "Nguyen", "Kowalski", "Sánchez", "Gómez", "Lefèvre", "Østergaard", "Jørgensen",
    "Bailey", "Thompson", "Fox", "Rodríguez", "Becker", "Silva", "Doyle", "Wright", "Ayala",
)  # fmt: skip
USER_LOCATIONS = (
    "San Jose-Sunnyvale-Santa Clara, CA", "Atlanta-Sandy Springs-Roswell, GA",
    "New York-Newark-Jersey City, NY-NJ-PA", "Chicago-Naperville-Elgin, IL-IN-WI",
    "Los Angeles-Long Beach-Anaheim, CA", "Houston-The Woodlands-Sugar Land, TX",
    "Seattle-Tacoma-Bellevue, WA", "Lansing-East Lansing, MI", "Bakersfield, CA",
    "Tampa-St. Petersburg-Clearwater, FL", "Portland-South Portland, ME", "Española, NM",
    "Mayagüez, PR", "Cañon City, CO", "San Germán-Cabo Rojo, PR", "Waterloo-Cedar Falls, IA",
    "Red Bluff, CA", "Birmingham-Hoover, AL", "Phoenix-Mesa-Scottsdale, AZ",
    "Detroit-Warren-Dearborn, MI", "Winston-Salem, NC", "Santa Maria-Santa Barbara, CA",
    "Minneapolis-St. Paul-Bloomington, MN-WI", "Boston-Cambridge-Newton, MA-NH",
    "Denver-Aurora-Lakewood, CO",
)  # fmt: skip
ARTIST_PLACES: tuple[tuple[str, float, float], ...] = (
    ("Reykjavík, Iceland", 64.13548, -21.89541),
    ("São Paulo, Brazil", -23.5475, -46.63611),
    ("Montréal, Québec, Canada", 45.50884, -73.58781),
    ("Zürich, Switzerland", 47.36667, 8.55),
    ("Malmö, Sweden", 55.60587, 13.00073),
    ("Bogotá, Colombia", 4.60971, -74.08175),
    ("Köln, Germany", 50.93333, 6.95),
    ("Houston, TX", 29.76045, -95.36978),
    ("Memphis, TN", 35.14968, -90.04892),
    ("London, England", 51.50632, -0.12714),
    ("Los Angeles, CA", 34.05349, -118.24532),
    ("Chicago, IL", 41.88415, -87.63241),
    ("Nashville, TN", 36.16778, -86.77836),
    ("Detroit, MI", 42.33168, -83.04792),
    ("Kingston, Jamaica", 17.99702, -76.79358),
    ("Paris, France", 48.85693, 2.3412),
    ("Berlin, Germany", 52.51607, 13.37698),
    ("Seattle, WA", 47.60356, -122.32944),
    ("Austin, TX", 30.26759, -97.74299),
    ("New Orleans, LA", 29.95369, -90.07771),
    ("Dublin, Ireland", 53.34376, -6.24953),
    ("Melbourne, Australia", -37.81753, 144.96715),
    ("Tokyo, Japan", 35.68501, 139.7514),
    ("Oslo, Norway", 59.91228, 10.74998),
    ("Ciudad de México, México", 19.43261, -99.13321),
)
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.77.4 (KHTML, like Gecko) "
    "Version/7.0.5 Safari/537.77.4",
    "Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 "
    "(KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
)
