DROP TABLE reminders;
DROP TABLE notifications;
