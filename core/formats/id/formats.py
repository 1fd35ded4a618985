# Day month year, 24-hour time, the time zone named (as in every language).
DATE_FORMAT = "j F Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j F Y, H.i T"
SHORT_DATETIME_FORMAT = "j M Y, H.i T"
TIME_FORMAT = "H.i"
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "."
NUMBER_GROUPING = 3
