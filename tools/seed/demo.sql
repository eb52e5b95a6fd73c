-- Demo catalogue for development and tests: different levels of assurance,
-- persons and organisations, voluntary and court-appointed kinds.
INSERT INTO services (code, name_nl, name_en, min_loa, max_duration_days, allow_person,
                      allow_organisation, mandate_kinds) VALUES
  ('uwv-ww-aanvragen', 'WW-uitkering aanvragen', 'Apply for unemployment benefit (WW)',
   'midden', 365, true, true, '{voluntary,bewind,curatele}'),
  ('uwv-wia-inzien', 'WIA-gegevens inzien', 'View disability benefit (WIA) details',
   'substantieel', 730, true, false, '{voluntary,bewind,curatele,mentorschap}'),
  ('belasting-aangifte', 'Belastingaangifte doen', 'File a tax return',
   'substantieel', 1827, true, true, '{voluntary,bewind,curatele}'),
  ('gemeente-afval', 'Afvalpas aanvragen', 'Request a waste disposal card',
   'basis', 90, true, false, '{voluntary}'),
  ('svb-aow-beheren', 'AOW-gegevens beheren', 'Manage state pension (AOW) details',
   'hoog', 1827, true, true, '{bewind,curatele,mentorschap}')
ON CONFLICT (code) DO NOTHING;
