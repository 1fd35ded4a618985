# Day month year (genitive month names), 24-hour time, the time zone named.
DATE_FORMAT = "j E Y"
SHORT_DATE_FORMAT = "j.m.Y"
DATETIME_FORMAT = "j E Y, H:i T"
SHORT_DATETIME_FORMAT = "j.m.Y, H:i T"
TIME_FORMAT = "H:i"
DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "\xa0"
NUMBER_GROUPING = 3
