-- The function's sessions run as audit_writer (database.ts sets the role at connection start), whatever login
-- its credentials are for. In AWS the secret it reads is the cluster's master user, the same user that applies
-- these migrations: make it a member of audit_writer so it may SET ROLE to it. (Its own privileges are larger
-- anyway; the point is that the function's sessions have only audit_writer's: INSERT and SELECT, audit_append.)
GRANT audit_writer TO CURRENT_USER;
