"""makemessages that also extracts the timeline's sentences.

`said("...")` and `said_n("...", "...", n)` (core.sentences) store a msgid that is
translated when the timeline is read, so xgettext must know them as keywords."""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options,
                        "--keyword=said", "--keyword=said_n:1,2"]
