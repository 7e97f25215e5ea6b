"""One date format on every page (issue 19 item 10): ISO 8601, whatever the template
forgets to say. Django's own English formats ("Dec. 4, 2026") would otherwise show."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
MONTH_DAY_FORMAT = "m-d"
YEAR_MONTH_FORMAT = "Y-m"
