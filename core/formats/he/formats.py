# Day month year, 24-hour time, the time zone named (as in every language).
DATE_FORMAT = "j בF Y"
SHORT_DATE_FORMAT = "j.n.Y"
DATETIME_FORMAT = "j בF Y, H:i T"
SHORT_DATETIME_FORMAT = "j.n.Y, H:i T"
TIME_FORMAT = "H:i"
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
