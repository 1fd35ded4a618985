# One date-time format across the product: day month year, 24-hour time, and the time
# zone named, so a team spread over zones reads every timestamp the same way.
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
TIME_FORMAT = "H:i"
