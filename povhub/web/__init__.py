"""`povhub web`: the ศจพ. centres' web page (figures per area, work lists, households, alerts)."""
