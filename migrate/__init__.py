"""See a change to the mesh before making it: ``diff`` (what every proxy receives differently), ``plan`` (what
a ``meshServices.mode`` switch adds, removes and breaks) and ``explain`` (why a proxy has a destination or not).

Everything here reads the same functions the translators use, so the answers cannot drift from what is served.
"""
