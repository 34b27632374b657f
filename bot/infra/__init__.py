"""Infrastructure: the store, leader election, the scheduler, exchange calendars, logs."""
