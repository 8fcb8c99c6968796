-- Every change to a tenant's webhook subscriptions is announced on `wagw_webhook_subscriptions`
-- (payload `tenant_id:mode`), so each replica drops its cached list of them (GET /v1/sessions
-- shows them in `config`). A trigger announces what no gateway code announces itself: the
-- delivery workers' health updates on any replica, deletions cascading from a tenant, a row
-- changed by hand. The announcement goes out when the transaction commits, and PostgreSQL
-- sends one per payload however many rows a statement touched.
CREATE FUNCTION announce_webhook_subscription_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('wagw_webhook_subscriptions', OLD.tenant_id || ':' || OLD.mode);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('wagw_webhook_subscriptions', NEW.tenant_id || ':' || NEW.mode);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER webhook_subscriptions_announce
    AFTER INSERT OR UPDATE OR DELETE ON webhook_subscriptions
    FOR EACH ROW EXECUTE FUNCTION announce_webhook_subscription_change();
