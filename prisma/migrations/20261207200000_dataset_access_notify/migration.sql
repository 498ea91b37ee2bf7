-- Processes cache datasets' access and owner (DatasetAccessCache); every change to either, and every
-- deletion, is announced in the changing transaction, whatever makes it (the api, a script, psql).
CREATE FUNCTION kura_notify_dataset_change() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('kura_dataset_changes', OLD.id);
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER datasets_notify_access_change
  AFTER UPDATE OF access, owner_key_id OR DELETE ON datasets
  FOR EACH ROW EXECUTE FUNCTION kura_notify_dataset_change();
