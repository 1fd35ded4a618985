# As in every language: day month year, 24-hour time, the time zone named. Western digits,
# as Arabic business software in the Gulf and Levant commonly shows them.
DATE_FORMAT = "j F Y"
SHORT_DATE_FORMAT = "j/n/Y"
DATETIME_FORMAT = "j F Y، H:i T"
SHORT_DATETIME_FORMAT = "j/n/Y، H:i T"
TIME_FORMAT = "H:i"
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
