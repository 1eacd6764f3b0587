-- 0004: the card-data change feed that terminals follow (syncproto
-- CardUpdate). Triggers log every change that alters what a kiosk should
-- answer, so no write path can forget to.
--
-- change_id is assigned under a transaction-scoped advisory lock as
-- max + 1, so changes commit in change_id order: a reader that has seen
-- change N can never later find a committed change below N. Card edits are
-- rare administrative acts, so serialising them costs nothing.

CREATE TABLE card_changes (
    change_id   bigint PRIMARY KEY,
    -- Cards of this organisation changed: card_id one card, NULL all of
    -- them (a person renamed, the organisation renamed).
    org_id      bigint,
    card_id     bigint,
    -- A chip UID removed from a card: the terminal must forget it.
    removed_ident text,
    -- Something about this site changed: its contractors (every terminal
    -- of the site takes a new snapshot) or a local block of one card.
    site_id     bigint,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX card_changes_org ON card_changes (org_id, change_id) WHERE org_id IS NOT NULL;
CREATE INDEX card_changes_site ON card_changes (site_id, change_id) WHERE site_id IS NOT NULL;

-- The site whose card data a terminal's cache holds, set when a snapshot
-- is sent: a terminal moved to another site takes a new snapshot.
ALTER TABLE terminals ADD COLUMN card_site_id bigint;

CREATE FUNCTION note_card_change(p_org bigint, p_card bigint, p_site bigint, p_removed text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- 7813457 = 'wEQ' : the card feed's lock, held until commit.
    PERFORM pg_advisory_xact_lock(7813457);
    INSERT INTO card_changes (change_id, org_id, card_id, site_id, removed_ident)
    SELECT coalesce(max(change_id), 0) + 1, p_org, p_card, p_site, p_removed FROM card_changes;
END $$;

CREATE FUNCTION cards_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM note_card_change(NEW.org_id, NEW.card_id, NULL, NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER cards_changed AFTER INSERT OR UPDATE ON cards
    FOR EACH ROW EXECUTE FUNCTION cards_changed();

CREATE FUNCTION card_chips_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM note_card_change(OLD.org_id, OLD.card_id, NULL, OLD.chip_uid);
    ELSE
        PERFORM note_card_change(NEW.org_id, NEW.card_id, NULL, NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER card_chips_changed AFTER INSERT OR UPDATE OR DELETE ON card_chips
    FOR EACH ROW EXECUTE FUNCTION card_chips_changed();

CREATE FUNCTION holder_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name IS DISTINCT FROM OLD.name OR NEW.anonymised_at IS DISTINCT FROM OLD.anonymised_at THEN
        PERFORM note_card_change(NEW.org_id, NULL, NULL, NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER persons_changed AFTER UPDATE ON persons
    FOR EACH ROW EXECUTE FUNCTION holder_changed();

CREATE FUNCTION organisation_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name IS DISTINCT FROM OLD.name THEN
        PERFORM note_card_change(NEW.org_id, NULL, NULL, NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER organisations_renamed AFTER UPDATE ON organisations
    FOR EACH ROW EXECUTE FUNCTION organisation_renamed();

CREATE FUNCTION roster_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM note_card_change(NULL, NULL, coalesce(NEW.site_id, OLD.site_id), NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER site_contractors_changed AFTER INSERT OR UPDATE OR DELETE ON site_contractors
    FOR EACH ROW EXECUTE FUNCTION roster_changed();

CREATE FUNCTION site_block_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM note_card_change(NULL, NEW.card_id, NEW.site_id, NULL);
    RETURN NULL;
END $$;
CREATE TRIGGER site_card_blocks_changed AFTER INSERT OR UPDATE ON site_card_blocks
    FOR EACH ROW EXECUTE FUNCTION site_block_changed();
