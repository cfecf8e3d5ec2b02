-- IOI (Institutional ORCID Integration): database schema for MySQL 5.7+ / MariaDB 10.5+.
--
-- Creates the eleven IOI tables (plus the port's additions) with the names, columns and keys of the 2019 PHP IOI, so either
-- program can use the database, and the default rows for `groups`, `mappings` and `emailTemplates`.
-- Usage:  mysql -u root -p -e "CREATE DATABASE ioi CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
--         mysql -u root -p ioi < ioi.sql
-- The usual way is `flask --app public/wsgi db upgrade`, which does the same and also upgrades
-- later. This file records the schema revision it equals in `alembic_version`, so that command
-- knows there is nothing to do.

SET NAMES utf8mb4;

CREATE TABLE `emailTemplates` (
  `templateID` int(11) NOT NULL AUTO_INCREMENT,
  `label` varchar(50) NOT NULL,
  `template` longtext NOT NULL,
  `lastUpdated` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`templateID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `groups` (
  `groupID` int(11) NOT NULL AUTO_INCREMENT,
  `label` varchar(50) NOT NULL,
  `titles` text NOT NULL,
  `titleParts` text NOT NULL,
  `titlePartsToIgnore` text NOT NULL,
  PRIMARY KEY (`groupID`),
  UNIQUE KEY `group` (`label`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `mappings` (
  `mappingID` int(11) NOT NULL AUTO_INCREMENT,
  `source` varchar(50) NOT NULL,
  `sourceField` varchar(50) NOT NULL,
  `entryType` varchar(50) NOT NULL,
  `place` int(11) DEFAULT NULL,
  `orcidField` varchar(50) NOT NULL,
  PRIMARY KEY (`mappingID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `messages` (
  `messageID` int(11) NOT NULL AUTO_INCREMENT,
  `process` varchar(50) NOT NULL,
  `type` varchar(20) NOT NULL,
  `message` longtext NOT NULL,
  `timestamp` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`messageID`),
  KEY `process` (`process`),
  KEY `type` (`type`),
  KEY `timestamp` (`timestamp`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `metadata` (
  `rowID` int(11) NOT NULL AUTO_INCREMENT,
  `source` varchar(50) NOT NULL,
  `idInSource` varchar(100) NOT NULL,
  `parentRowID` int(11) DEFAULT NULL,
  `field` varchar(200) NOT NULL,
  `place` int(11) NOT NULL,
  `value` longtext NOT NULL,
  `added` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `deleted` timestamp NULL DEFAULT NULL,
  `replacedByRowID` int(11) DEFAULT NULL,
  PRIMARY KEY (`rowID`),
  UNIQUE KEY `checkAll` (`source`, `idInSource`, `parentRowID`, `field`, `place`, `deleted`),
  KEY `value` (`value`(200)),
  KEY `field` (`field`),
  KEY `added` (`added`),
  KEY `parentRowID` (`parentRowID`),
  KEY `idInSource` (`idInSource`),
  KEY `sourceFieldValueDeleted` (`source`, `field`, `value`(50), `deleted`),
  KEY `sourceFieldDeleted` (`source`, `field`, `deleted`),
  KEY `sourceIdInSourceDeleted` (`source`, `idInSource`, `deleted`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `orcids` (
  `rowID` int(100) NOT NULL AUTO_INCREMENT,
  `email` varchar(100) NOT NULL,
  `orcid` varchar(50) NOT NULL,
  `name` varchar(100) NOT NULL,
  `localPersonID` int(11) NOT NULL,
  `added` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `deleted` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`rowID`),
  UNIQUE KEY `orcid` (`orcid`),
  KEY `email` (`email`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `putCodes` (
  `rowID` int(11) NOT NULL AUTO_INCREMENT,
  `orcid` varchar(30) NOT NULL,
  `type` varchar(30) NOT NULL,
  `putCode` varchar(30) NOT NULL,
  `localSourceRecordID` varchar(100) NOT NULL,
  `submittedData` longtext NOT NULL,
  `format` varchar(10) NOT NULL,
  `apiResponse` text NOT NULL,
  `added` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `deleted` timestamp NULL DEFAULT NULL,
  `replacedByRowID` int(11) DEFAULT NULL,
  PRIMARY KEY (`rowID`),
  KEY `added` (`added`),
  KEY `replacedBy` (`replacedByRowID`),
  KEY `deleted` (`deleted`),
  KEY `putCode` (`putCode`),
  KEY `localSourceRecordID` (`localSourceRecordID`),
  KEY `path` (`orcid`, `type`, `putCode`),
  KEY `type` (`type`),
  KEY `format` (`format`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `sourceData` (
  `rowID` int(11) NOT NULL AUTO_INCREMENT,
  `source` varchar(30) NOT NULL,
  `idInSource` varchar(100) NOT NULL,
  `sourceData` longtext NOT NULL,
  `format` varchar(10) NOT NULL,
  `added` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `deleted` timestamp NULL DEFAULT NULL,
  `replacedByRowID` int(11) DEFAULT NULL,
  PRIMARY KEY (`rowID`),
  KEY `added` (`added`),
  KEY `replacedBy` (`replacedByRowID`),
  KEY `deleted` (`deleted`),
  KEY `idInSource` (`idInSource`),
  KEY `source` (`source`, `idInSource`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `tokens` (
  `access_token` varchar(255) NOT NULL,
  `expiration` datetime NOT NULL,
  `scope` varchar(200) NOT NULL,
  `orcid` varchar(50) NOT NULL,
  `name` varchar(100) NOT NULL,
  `created` datetime NOT NULL,
  `refresh_token` varchar(255) DEFAULT NULL,
  `deleted` timestamp NULL DEFAULT NULL,
  `deletedReason` varchar(100) DEFAULT NULL,
  UNIQUE KEY `access_token` (`access_token`),
  KEY `orcid` (`orcid`),
  KEY `deleted` (`deleted`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `users` (
  `email` varchar(100) NOT NULL,
  `admin` int(11) NOT NULL,
  `added` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  UNIQUE KEY `email` (`email`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `userSelections` (
  `rowID` int(11) NOT NULL AUTO_INCREMENT,
  `orcid` varchar(30) NOT NULL,
  `type` varchar(30) NOT NULL,
  `localSourceRecordID` varchar(255) NOT NULL,
  `selected` timestamp NULL DEFAULT NULL,
  `ignored` timestamp NULL DEFAULT NULL,
  `deleted` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`rowID`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Added by the Python port (not in the PHP IOI): every call made to ORCID, for the audit view.
CREATE TABLE `orcidCalls` (
  `callID` int(11) NOT NULL AUTO_INCREMENT,
  `process` varchar(50) NOT NULL,
  `method` varchar(10) NOT NULL,
  `url` varchar(500) NOT NULL,
  `status` int(11) DEFAULT NULL,
  `ms` int(11) NOT NULL,
  `timestamp` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`callID`),
  KEY `timestamp` (`timestamp`),
  KEY `process` (`process`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Added by the Python port: invitation email batches; `runLock` is set only while a batch runs.
CREATE TABLE `emailBatches` (
  `batchID` int(11) NOT NULL AUTO_INCREMENT,
  `groupLabel` varchar(50) NOT NULL,
  `inviteType` varchar(30) NOT NULL,
  `sentBy` varchar(100) NOT NULL,
  `started` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `heartbeat` timestamp NULL DEFAULT NULL,
  `finished` timestamp NULL DEFAULT NULL,
  `status` varchar(20) NOT NULL,
  `total` int(11) NOT NULL DEFAULT 0,
  `sent` int(11) NOT NULL DEFAULT 0,
  `skipped` int(11) NOT NULL DEFAULT 0,
  `failed` int(11) NOT NULL DEFAULT 0,
  `lastError` text DEFAULT NULL,
  `runLock` varchar(20) DEFAULT NULL,
  PRIMARY KEY (`batchID`),
  UNIQUE KEY `runLock` (`runLock`),
  KEY `groupType` (`groupLabel`, `inviteType`),
  KEY `started` (`started`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Added by the Python port: change counters ('metadata', 'orcids') for the query API's response cache.
CREATE TABLE `dataVersions` (
  `name` varchar(50) NOT NULL,
  `version` bigint(20) NOT NULL DEFAULT 0,
  PRIMARY KEY (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Schema revision (Alembic); `db upgrade` continues from here.
CREATE TABLE `alembic_version` (
  `version_num` varchar(32) NOT NULL,
  PRIMARY KEY (`version_num`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO `alembic_version` (`version_num`) VALUES ('0005');

-- Default rows.
INSERT INTO `groups` (`groupID`, `label`, `titles`, `titleParts`, `titlePartsToIgnore`) VALUES
  (1, 'Students', 'MS Student||PhD Student||MS/PhD Student', '', ''),
  (2, 'Faculty', '', 'prof ||prof.||professor', 'Professor Emeritus||Courtesy Professor'),
  (3, 'Postdocs', 'Post-Doctoral Fellow||Postdoctoral Fellow', '', '');

INSERT INTO `mappings` (`mappingID`, `source`, `sourceField`, `entryType`, `place`, `orcidField`) VALUES
  (1, 'dspace', 'dc.title', 'work', 1, 'title'),
  (2, 'dspace', 'dc.identifier.journal', 'work', 2, 'journal-title'),
  (3, 'dspace', 'dc.type', 'work', 3, 'type'),
  (4, 'dspace', 'dc.date.issued', 'work', 4, 'publication-date'),
  (5, 'dspace', 'dc.identifier.doi', 'work', 5, 'external-ids.doi'),
  (6, 'dspace', 'dc.identifier.uri', 'work', 6, 'external-ids.handle'),
  (7, 'dspace', 'dc.identifier.uri', 'work', 9, 'url'),
  (9, 'dspace', 'dc.identifier.pmid', 'work', 7, 'external-ids.pmid'),
  (10, 'dspace', 'dc.identifier.arxivid', 'work', 8, 'external-ids.arxiv'),
  (11, 'dspace', 'Article', 'workType', NULL, 'journal-article'),
  (12, 'dspace', 'Book', 'workType', NULL, 'book'),
  (13, 'dspace', 'Book Chapter', 'workType', NULL, 'book-chapter'),
  (14, 'dspace', 'Conference Paper', 'workType', NULL, 'conference-paper'),
  (15, 'dspace', 'Dataset', 'workType', NULL, 'data-set'),
  (16, 'dspace', 'Technical Report', 'workType', NULL, 'report'),
  (17, 'dspace', 'Poster', 'workType', NULL, 'conference-poster'),
  (18, 'dspace', 'Dissertation', 'workType', NULL, 'dissertation-thesis'),
  (19, 'dspace', 'Thesis', 'workType', NULL, 'supervised-student-publication'),
  (20, 'dspace', 'Patent', 'workType', NULL, 'patent'),
  (21, 'dspace', 'Presentation', 'workType', NULL, 'lecture-speech'),
  (22, 'dspace', 'Preprint', 'workType', NULL, 'preprint'),
  (23, 'dspace', 'Software', 'workType', NULL, 'software');

INSERT INTO `emailTemplates` (`templateID`, `label`, `template`) VALUES
  (1, 'membership', '<html>\n<body>\n<p>Dear {{givenName}},</p>\n<p>{{INSTITUTION_ABBREVIATION}} is now an institutional member of ORCID.</p>\n<p>An <a href="{{ORCID_LINK_BASE_URL}}">ORCID iD</a> is a free, persistent identifier that keeps your work attributed to you, whatever your name''s spelling and wherever you move. Once you connect it, {{INSTITUTION_ABBREVIATION}} can keep your ORCID record up to date with your affiliation and the publications you choose from our repository.</p>\n<p>To create your iD, or tell us the one you already have, please use <a href="{{OAUTH_REDIRECT_URI}}">ORCID at {{INSTITUTION_ABBREVIATION}}</a>.</p>\n<p>Questions? Our <a href="{{LOCAL_LIBGUIDE_URL}}">ORCID guide</a> and <a href="{{LOCAL_TRAINING_URL}}">training sessions</a> can help, or simply reply to this message.</p>\n<p>Best regards,<br>{{sender}}<br>for the {{INSTITUTION_ABBREVIATION}} Library</p>\n</body>\n</html>'),
  (2, 'initial', '<html>\n<body>\n<p>Dear {{givenName}},</p>\n<p>An <a href="{{ORCID_LINK_BASE_URL}}">ORCID iD</a> is a free, persistent identifier that keeps your work attributed to you, whatever your name''s spelling and wherever you move. Once you connect it, {{INSTITUTION_ABBREVIATION}} can keep your ORCID record up to date with your affiliation and the publications you choose from our repository.</p>\n<p>It takes two minutes: sign in to <a href="{{OAUTH_REDIRECT_URI}}">ORCID at {{INSTITUTION_ABBREVIATION}}</a> with your campus account, then create or identify your ORCID iD and choose what we may add to your record.</p>\n<p>Questions? Our <a href="{{LOCAL_LIBGUIDE_URL}}">ORCID guide</a> and <a href="{{LOCAL_TRAINING_URL}}">training sessions</a> can help, or simply reply to this message.</p>\n<p>Best regards,<br>{{sender}}<br>for the {{INSTITUTION_ABBREVIATION}} Library</p>\n</body>\n</html>'),
  (3, 'followup', '<html>\n<body>\n<p>Dear {{givenName}},</p>\n<p>A short reminder: we have not yet seen an ORCID iD connected to your {{INSTITUTION_ABBREVIATION}} account.</p>\n<p>An <a href="{{ORCID_LINK_BASE_URL}}">ORCID iD</a> is a free, persistent identifier that keeps your work attributed to you, whatever your name''s spelling and wherever you move. Once you connect it, {{INSTITUTION_ABBREVIATION}} can keep your ORCID record up to date with your affiliation and the publications you choose from our repository.</p>\n<p>Please sign in to <a href="{{OAUTH_REDIRECT_URI}}">ORCID at {{INSTITUTION_ABBREVIATION}}</a> to create or identify your iD.</p>\n<p>Questions? Our <a href="{{LOCAL_LIBGUIDE_URL}}">ORCID guide</a> and <a href="{{LOCAL_TRAINING_URL}}">training sessions</a> can help, or simply reply to this message.</p>\n<p>Best regards,<br>{{sender}}<br>for the {{INSTITUTION_ABBREVIATION}} Library</p>\n</body>\n</html>'),
  (4, 'noPermissions', '<html>\n<body>\n<p>Dear {{givenName}},</p>\n<p>Thank you for connecting your ORCID iD <a href="{{ORCID_LINK_BASE_URL}}{{ORCID}}">{{ORCID}}</a> to {{INSTITUTION_ABBREVIATION}}.</p>\n<p>We cannot yet update your ORCID record for you: {{INSTITUTION_ABBREVIATION}} has no current permission to do so. If you would like your affiliation and repository publications to appear on your record, please sign in to <a href="{{OAUTH_REDIRECT_URI}}">ORCID at {{INSTITUTION_ABBREVIATION}}</a> and grant permission.</p>\n<p>Questions? Our <a href="{{LOCAL_LIBGUIDE_URL}}">ORCID guide</a> and <a href="{{LOCAL_TRAINING_URL}}">training sessions</a> can help, or simply reply to this message.</p>\n<p>Best regards,<br>{{sender}}<br>for the {{INSTITUTION_ABBREVIATION}} Library</p>\n</body>\n</html>');

