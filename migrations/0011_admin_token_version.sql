-- A password change bumps the admin's token version; tokens carry the version they were
-- issued at, so every token issued before the change is refused from then on.
ALTER TABLE admins ADD COLUMN token_version integer NOT NULL DEFAULT 0;

-- Failure counts are now kept per (credential, client address) under new kinds; rows of the
-- old kinds would only wait for the purge.
DELETE FROM auth_failures WHERE kind IN ('key', 'login_user');
