"""Pages and assets served to browsers: the home page, the favicon and the simulator (sim.html).

Everything ships inside the package: duty offices often sit on intranets without internet access.
"""
