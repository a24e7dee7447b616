//! The interface's languages (English, German, Russian): which one a request gets, the texts of
//! the pages, and numbers and times as each language writes them.

use axum::http::HeaderMap;
use kontor_domain::Entity;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Ru,
}

impl Lang {
    /// The first language of `Accept-Language` the interface speaks (English otherwise).
    /// Browsers list languages in the user's order of preference.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let accepted = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        accepted
            .split(',')
            .filter_map(|item| {
                let tag = item.split(';').next()?.trim();
                let primary = tag.split('-').next()?.to_ascii_lowercase();
                Lang::from_code(&primary)
            })
            .next()
            .unwrap_or(Lang::En)
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Ru => "ru",
        }
    }

    /// The text of `key` in this language (the key itself when there is none).
    pub fn t(self, key: &'static str) -> &'static str {
        let (en, de, ru) = match key {
            "app" => ("Kontor", "Kontor", "Kontor"),
            "login.title" => ("Log in", "Anmelden", "Вход"),
            "login.email" => ("E-mail", "E-Mail", "Эл. почта"),
            "login.password" => ("Password", "Passwort", "Пароль"),
            "login.submit" => ("Log in", "Anmelden", "Войти"),
            "login.failed" => (
                "The e-mail or the password is wrong.",
                "E-Mail oder Passwort ist falsch.",
                "Неверная эл. почта или пароль.",
            ),
            "login.limited" => (
                "Too many failed logins. Try again in a few minutes.",
                "Zu viele fehlgeschlagene Anmeldungen. Bitte in einigen Minuten erneut versuchen.",
                "Слишком много неудачных попыток входа. Повторите через несколько минут.",
            ),
            "login.expired" => (
                "The form has expired. Please log in again.",
                "Das Formular ist abgelaufen. Bitte erneut anmelden.",
                "Форма устарела. Войдите ещё раз.",
            ),
            "logout" => ("Log out", "Abmelden", "Выйти"),
            "search" => ("Search", "Suchen", "Поиск"),
            "search.placeholder" => (
                "Name, e-mail, phone, INN…",
                "Name, E-Mail, Telefon, INN…",
                "Имя, эл. почта, телефон, ИНН…",
            ),
            "home" => ("Overview", "Übersicht", "Обзор"),
            "home.lead" => (
                "Open a list, or search across all records.",
                "Eine Liste öffnen oder in allen Datensätzen suchen.",
                "Откройте список или ищите по всем записям.",
            ),
            "list.empty" => (
                "Nothing here yet.",
                "Noch keine Einträge.",
                "Здесь пока ничего нет.",
            ),
            "list.no_match" => (
                "Nothing matches.",
                "Keine Treffer.",
                "Ничего не найдено.",
            ),
            "list.next" => ("Next page", "Nächste Seite", "Следующая страница"),
            "list.first" => ("First page", "Erste Seite", "Первая страница"),
            "list.filter" => ("Filter", "Filtern", "Фильтр"),
            "list.sort" => ("Sort by", "Sortieren nach", "Сортировать по"),
            "list.order" => ("Order", "Reihenfolge", "Порядок"),
            "list.asc" => ("ascending", "aufsteigend", "по возрастанию"),
            "list.desc" => ("descending", "absteigend", "по убыванию"),
            "list.apply" => ("Apply", "Anwenden", "Применить"),
            "list.about" => ("about", "etwa", "около"),
            "list.more_than" => ("more than", "mehr als", "более"),
            "record.fields" => ("Fields", "Felder", "Поля"),
            "record.history" => ("History", "Verlauf", "История"),
            "record.related" => ("Related", "Verknüpft", "Связанные"),
            "record.no_history" => (
                "No changes recorded.",
                "Keine Änderungen verzeichnet.",
                "Изменений нет.",
            ),
            "record.created" => ("Created", "Angelegt", "Создано"),
            "record.updated" => ("Changed", "Geändert", "Изменено"),
            "record.owner" => ("Owner", "Verantwortlich", "Ответственный"),
            "op.create" => ("created", "angelegt", "создана"),
            "op.update" => ("changed", "geändert", "изменена"),
            "op.delete" => ("deleted", "gelöscht", "удалена"),
            "op.restore" => ("restored", "wiederhergestellt", "восстановлена"),
            "op.purge" => ("purged", "endgültig gelöscht", "удалена навсегда"),
            "by" => ("by", "von", "—"),
            "yes" => ("yes", "ja", "да"),
            "no" => ("no", "nein", "нет"),
            "error.title" => ("Something is wrong", "Etwas stimmt nicht", "Что-то не так"),
            "error.not_found" => (
                "There is no such page, or you may not see it.",
                "Diese Seite gibt es nicht, oder sie ist für Sie nicht sichtbar.",
                "Такой страницы нет, или у вас нет к ней доступа.",
            ),
            "error.forbidden" => (
                "You may not do this.",
                "Das dürfen Sie nicht.",
                "У вас нет на это прав.",
            ),
            "error.csrf" => (
                "The form has expired or did not come from this site. Go back, reload the page and try again.",
                "Das Formular ist abgelaufen oder stammt nicht von dieser Seite. Zurückgehen, die Seite neu laden und erneut versuchen.",
                "Форма устарела или отправлена не с этого сайта. Вернитесь, обновите страницу и повторите.",
            ),
            "readonly.maintenance" => (
                "Kontor is in maintenance and read-only. Nothing was saved; go back to keep what you typed and save it later.",
                "Kontor ist in Wartung und schreibgeschützt. Nichts wurde gespeichert; gehen Sie zurück, um Ihre Eingaben zu behalten, und speichern Sie später.",
                "Kontor на обслуживании и доступен только для чтения. Ничего не сохранено; вернитесь назад, чтобы не потерять введённое, и сохраните позже.",
            ),
            "readonly.shutdown" => (
                "Kontor is shutting down and read-only. Nothing was saved; go back to keep what you typed and save it when Kontor is back.",
                "Kontor wird heruntergefahren und ist schreibgeschützt. Nichts wurde gespeichert; gehen Sie zurück, um Ihre Eingaben zu behalten, und speichern Sie, wenn Kontor wieder da ist.",
                "Kontor завершает работу и доступен только для чтения. Ничего не сохранено; вернитесь назад, чтобы не потерять введённое, и сохраните, когда Kontor снова заработает.",
            ),
            "readonly.upgrade" => (
                "Kontor is being upgraded and is read-only. Nothing was saved; go back to keep what you typed and save it after the upgrade.",
                "Kontor wird aktualisiert und ist schreibgeschützt. Nichts wurde gespeichert; gehen Sie zurück, um Ihre Eingaben zu behalten, und speichern Sie nach der Aktualisierung.",
                "Kontor обновляется и доступен только для чтения. Ничего не сохранено; вернитесь назад, чтобы не потерять введённое, и сохраните после обновления.",
            ),
            "ops.title" => (
                "Maintenance and shutdown",
                "Wartung und Herunterfahren",
                "Обслуживание и остановка",
            ),
            "ops.maintenance" => ("Maintenance mode", "Wartungsmodus", "Режим обслуживания"),
            "ops.open" => (
                "Writes are open.",
                "Änderungen sind möglich.",
                "Изменения разрешены.",
            ),
            "ops.maintenance_on" => (
                "Make read-only for everyone",
                "Für alle schreibschützen",
                "Включить только чтение для всех",
            ),
            "ops.maintenance_off" => (
                "Open writes again",
                "Änderungen wieder erlauben",
                "Снова разрешить изменения",
            ),
            "ops.message" => (
                "Message to users",
                "Nachricht an die Benutzer",
                "Сообщение пользователям",
            ),
            "ops.shutdown" => ("Shutdown", "Herunterfahren", "Остановка"),
            "ops.in_minutes" => ("In minutes", "In Minuten", "Через минут"),
            "ops.schedule" => (
                "Announce and schedule",
                "Ankündigen und planen",
                "Объявить и запланировать",
            ),
            "ops.cancel" => (
                "Cancel the shutdown",
                "Herunterfahren absagen",
                "Отменить остановку",
            ),
            "banner.read_only" => (
                "Read-only: changes cannot be saved right now.",
                "Schreibgeschützt: Änderungen können gerade nicht gespeichert werden.",
                "Только чтение: изменения сейчас не сохраняются.",
            ),
            "banner.shutdown" => (
                "Kontor shuts down at",
                "Kontor wird heruntergefahren um",
                "Kontor завершит работу в",
            ),
            "banner.save" => (
                "Save your work before then.",
                "Speichern Sie Ihre Arbeit vorher.",
                "Сохраните работу до этого времени.",
            ),
            "error.unavailable" => (
                "Kontor is busy or in maintenance. Try again shortly.",
                "Kontor ist ausgelastet oder in Wartung. Bitte gleich erneut versuchen.",
                "Kontor занят или на обслуживании. Повторите чуть позже.",
            ),
            "error.back" => ("Back to the overview", "Zur Übersicht", "К обзору"),
            "skip" => ("Skip to content", "Zum Inhalt", "К содержимому"),
            "history.restore_here" => (
                "Restore the record as it was here",
                "Datensatz wie hier wiederherstellen",
                "Вернуть запись в это состояние",
            ),
            "history.undo_batch" => ("Undo this batch", "Diesen Vorgang rückgängig machen", "Отменить эту операцию"),
            "history.batch" => ("The whole batch", "Der ganze Vorgang", "Вся операция"),
            "history.undone" => (
                "The batch was undone, as a new change.",
                "Der Vorgang wurde rückgängig gemacht, als neue Änderung.",
                "Операция отменена — новым изменением.",
            ),
            "history.restored" => ("Restored.", "Wiederhergestellt.", "Восстановлено."),
            "history.conflicts" => (
                "Nothing was changed, because:",
                "Nichts wurde geändert, denn:",
                "Ничего не изменено, потому что:",
            ),
            "history.op" => ("Operation", "Vorgang", "Операция"),
            "history.origin" => ("Origin", "Herkunft", "Источник"),
            "history.actor" => ("User id", "Benutzer-ID", "ID пользователя"),
            "history.from" => ("From", "Von", "С"),
            "history.to" => ("To", "Bis", "По"),
            "invoice.print" => ("Printable invoice", "Druckansicht", "Версия для печати"),
            "invoice.in_1c" => ("in 1C", "in 1C übertragen", "передан в 1С"),
            "invoice.not_yet_1c" => (
                "not yet sent to 1C",
                "noch nicht an 1C übertragen",
                "ещё не передан в 1С",
            ),
            "invoice.draft_not_sent" => (
                "a draft, not sent to 1C",
                "Entwurf, wird nicht an 1C übertragen",
                "черновик, в 1С не передаётся",
            ),
            "invoice.number_1c" => ("1C number", "1C-Nummer", "номер в 1С"),
            "invoice.title" => ("Invoice", "Rechnung", "Счёт"),
            "invoice.of" => ("of", "vom", "от"),
            "invoice.buyer" => ("Buyer", "Käufer", "Покупатель"),
            "invoice.seller" => ("Seller", "Verkäufer", "Продавец"),
            "invoice.due" => ("Due", "Fällig", "Оплатить до"),
            "invoice.subtotal" => ("Subtotal", "Zwischensumme", "Итого без НДС"),
            "invoice.vat" => ("VAT", "MwSt.", "НДС"),
            "invoice.total" => ("Total", "Gesamt", "Всего к оплате"),
            "invoice.paid" => ("Paid", "Bezahlt", "Оплачено"),
            "invoice.vat_included" => ("VAT included in the prices", "MwSt. in den Preisen enthalten", "НДС включён в цену"),
            "admin.title" => ("Administration", "Verwaltung", "Администрирование"),
            "admin.backups" => ("Backups", "Sicherungen", "Резервные копии"),
            "admin.exchange" => ("1C exchange runs", "1C-Austauschläufe", "Обмены с 1С"),
            "admin.imports" => ("Imports (history)", "Importe (Verlauf)", "Импорты (история)"),
            "admin.no_backups" => (
                "This server has no backup settings.",
                "Dieser Server hat keine Sicherungseinstellungen.",
                "У этого сервера нет настроек резервного копирования.",
            ),
            "admin.backups_unreadable" => (
                "The backups cannot be read",
                "Die Sicherungen sind nicht lesbar",
                "Резервные копии не читаются",
            ),
            "admin.never_verified" => (
                "No snapshot has been verified yet.",
                "Noch kein Stand wurde geprüft.",
                "Ни один снимок ещё не проверен.",
            ),
            "admin.last_verified" => (
                "Newest verified snapshot:",
                "Neuester geprüfter Stand:",
                "Последний проверенный снимок:",
            ),
            "admin.failed_verifications" => (
                "Failed verifications:",
                "Fehlgeschlagene Prüfungen:",
                "Неудачных проверок:",
            ),
            "admin.state" => ("State", "Zustand", "Состояние"),
            "admin.archives" => ("Snapshots", "Stände", "Снимки"),
            "admin.archive" => ("Snapshot", "Stand", "Снимок"),
            "admin.verification" => ("Verified", "Geprüft", "Проверен"),
            "admin.not_verified" => ("not yet", "noch nicht", "ещё нет"),
            "admin.no_runs" => (
                "No exchange with 1C has run yet.",
                "Noch kein Austausch mit 1C.",
                "Обменов с 1С ещё не было.",
            ),
            "admin.run_state" => ("State", "Zustand", "Состояние"),
            "admin.progress" => ("Progress", "Fortschritt", "Ход"),
            "form.rows_hint" => (
                "Empty rows are left out. Save to get more blank rows.",
                "Leere Zeilen werden weggelassen. Speichern ergibt weitere leere Zeilen.",
                "Пустые строки не сохраняются. После сохранения появятся новые пустые строки.",
            ),
            "form.new" => ("New", "Neu", "Создать"),
            "form.edit" => ("Edit", "Bearbeiten", "Изменить"),
            "form.save" => ("Save", "Speichern", "Сохранить"),
            "form.delete" => ("Delete", "Löschen", "Удалить"),
            "bin.title" => ("Recycle bin", "Papierkorb", "Корзина"),
            "bin.moved" => (
                "was moved to the recycle bin.",
                "wurde in den Papierkorb verschoben.",
                "перемещена в корзину.",
            ),
            "bin.moves" => (
                "Moves it to the recycle bin.",
                "Verschiebt in den Papierkorb.",
                "Переместит в корзину.",
            ),
            "bin.until" => (
                "It can be restored until",
                "Wiederherstellbar bis",
                "Можно восстановить до",
            ),
            "bin.kept" => (
                "It stays there until an administrator empties it.",
                "Dort bleibt es, bis ein Administrator ihn leert.",
                "Там она останется, пока администратор не очистит корзину.",
            ),
            "bin.empty" => (
                "The recycle bin is empty.",
                "Der Papierkorb ist leer.",
                "Корзина пуста.",
            ),
            "bin.restore" => ("Restore selected", "Ausgewählte wiederherstellen", "Восстановить выбранные"),
            "bin.purge" => ("Delete selected for good", "Ausgewählte endgültig löschen", "Удалить выбранные навсегда"),
            "bin.restored" => ("Restored:", "Wiederhergestellt:", "Восстановлено:"),
            "bin.purged" => ("Deleted for good:", "Endgültig gelöscht:", "Удалено навсегда:"),
            "bin.deleted_at" => ("Deleted", "Gelöscht", "Удалено"),
            "bin.deleted_by" => ("By", "Von", "Кем"),
            "bin.kind" => ("Kind", "Art", "Тип"),
            "bin.record" => ("Record", "Datensatz", "Запись"),
            "bin.all" => ("All", "Alle", "Все"),
            "bin.pick" => ("Select", "Auswählen", "Выбрать"),
            "bin.none_picked" => (
                "Select at least one record.",
                "Mindestens einen Datensatz auswählen.",
                "Выберите хотя бы одну запись.",
            ),
            "role.builtin" => (
                "A built-in role: its rules are Kontor's and cannot be changed. To grant something else, make a custom role.",
                "Eine eingebaute Rolle: Ihre Regeln gibt Kontor vor, sie lassen sich nicht ändern. Für andere Rechte legen Sie eine eigene Rolle an.",
                "Встроенная роль: её правила задаёт Kontor, изменить их нельзя. Для других прав создайте свою роль.",
            ),
            "role.admin_all" => (
                "Administrators may do everything, users and settings included.",
                "Administratoren dürfen alles, auch Benutzer und Einstellungen.",
                "Администраторам доступно всё, включая пользователей и настройки.",
            ),
            "role.no_api_login" => (
                "Cannot log in to the pages or the REST API (1C's exchange only).",
                "Kann sich nicht an den Seiten oder der REST-API anmelden (nur 1C-Austausch).",
                "Не может входить на страницы и в REST API (только обмен с 1С).",
            ),
            "role.make_custom" => ("Make a custom role", "Eigene Rolle anlegen", "Создать свою роль"),
            "admin.builtin_roles" => ("Built-in roles", "Eingebaute Rollen", "Встроенные роли"),
            "ref.none" => (
                "No record you can see has this name:",
                "Kein Datensatz, den Sie sehen können, heißt so:",
                "Нет доступной вам записи с таким названием:",
            ),
            "ref.several" => (
                "Several records have this name; choose one below:",
                "Mehrere Datensätze heißen so; bitte unten einen wählen:",
                "Это название у нескольких записей; выберите одну ниже:",
            ),
            "ref.choose" => ("Which one?", "Welcher?", "Какая именно?"),
            "form.one_per_line" => ("One per line", "Eins pro Zeile", "По одному в строке"),
            "form.json_object" => (
                "A JSON object, e.g. {\"name\": \"value\"}; empty for none.",
                "Ein JSON-Objekt, z. B. {\"name\": \"wert\"}; leer für keins.",
                "Объект JSON, например {\"name\": \"значение\"}; пусто — нет.",
            ),
            "role.permissions" => ("Permissions", "Berechtigungen", "Права"),
            "role.none" => ("none", "keine", "нет"),
            "role.own" => ("own", "eigene", "свои"),
            "role.team" => ("team", "Team", "команды"),
            "role.all" => ("all", "alle", "все"),
            "role.read" => ("Read", "Lesen", "Чтение"),
            "role.create" => ("Create", "Anlegen", "Создание"),
            "role.update" => ("Change", "Ändern", "Изменение"),
            "role.delete" => ("Delete", "Löschen", "Удаление"),
            "role.scopes_hint" => (
                "own: records the user owns; team: records of anyone in the user's team; all: every record.",
                "eigene: Datensätze des Benutzers; Team: Datensätze aller im Team des Benutzers; alle: jeder Datensatz.",
                "свои: записи пользователя; команды: записи всех в команде пользователя; все: любая запись.",
            ),
            "role.field_rules" => (
                "Hidden and read-only fields",
                "Verborgene und schreibgeschützte Felder",
                "Скрытые поля и поля только для чтения",
            ),
            "role.field" => ("Field", "Feld", "Поле"),
            "role.hidden" => ("hidden", "verborgen", "скрыто"),
            "role.readonly" => ("read-only", "schreibgeschützt", "только чтение"),
            "form.password_keep" => (
                "Leave empty to keep the password.",
                "Leer lassen, um das Passwort zu behalten.",
                "Оставьте пустым, чтобы не менять пароль.",
            ),
            "admin.people" => ("Users and settings", "Benutzer und Einstellungen", "Пользователи и настройки"),
            "admin.operations" => ("Operations", "Betrieb", "Эксплуатация"),
            "admin.snapshot_now" => ("Take a snapshot now", "Jetzt eine Sicherung erstellen", "Создать снимок сейчас"),
            "admin.snapshot_hint" => (
                "It is verified by restoring it right after.",
                "Sie wird gleich danach durch Wiederherstellen geprüft.",
                "Сразу после создания он проверяется восстановлением.",
            ),
            "admin.verify" => ("Verify", "Prüfen", "Проверить"),
            "admin.job" => ("Job", "Auftrag", "Задание"),
            "history.undo_hour" => (
                "Undo this user's changes",
                "Änderungen dieses Benutzers zurücknehmen",
                "Отменить изменения этого пользователя",
            ),
            "history.undo_range" => (
                "Undo everything this user changed in this time",
                "Alles zurücknehmen, was dieser Benutzer in dieser Zeit geändert hat",
                "Отменить всё, что этот пользователь изменил за это время",
            ),
            "history.actor_hint" => ("E-mail or user id", "E-Mail oder Benutzer-ID", "Эл. почта или id"),
            "account.title" => ("My account", "Mein Konto", "Моя учётная запись"),
            "account.role" => ("Role", "Rolle", "Роль"),
            "account.settings" => ("Settings", "Einstellungen", "Настройки"),
            "account.name" => ("Name", "Name", "Имя"),
            "account.language" => ("Language", "Sprache", "Язык"),
            "account.language_browser" => (
                "As the browser says",
                "Wie im Browser eingestellt",
                "Как в браузере",
            ),
            "account.saved" => ("Saved.", "Gespeichert.", "Сохранено."),
            "account.password" => ("Password", "Passwort", "Пароль"),
            "account.password_hint" => (
                "A new password ends every other session of this account (other browsers, API tokens).",
                "Ein neues Passwort beendet alle anderen Sitzungen dieses Kontos (andere Browser, API-Token).",
                "Новый пароль завершает все остальные сеансы этой учётной записи (другие браузеры, токены API).",
            ),
            "account.current_password" => ("Current password", "Aktuelles Passwort", "Текущий пароль"),
            "account.new_password" => ("New password", "Neues Passwort", "Новый пароль"),
            "account.repeat_password" => (
                "New password again",
                "Neues Passwort wiederholen",
                "Новый пароль ещё раз",
            ),
            "account.change_password" => ("Change password", "Passwort ändern", "Сменить пароль"),
            "account.repeat_differs" => (
                "The two new passwords differ.",
                "Die beiden neuen Passwörter sind verschieden.",
                "Два новых пароля не совпадают.",
            ),
            "account.password_changed" => (
                "The password is changed; every other session of this account has ended.",
                "Das Passwort ist geändert; alle anderen Sitzungen dieses Kontos sind beendet.",
                "Пароль изменён; все остальные сеансы этой учётной записи завершены.",
            ),
            _ => (key, key, key),
        };
        match self {
            Lang::En => en,
            Lang::De => de,
            Lang::Ru => ru,
        }
    }

    /// An entity's name as a list title.
    pub fn entity(self, e: Entity) -> &'static str {
        let (en, de, ru) = match e {
            Entity::Companies => ("Companies", "Firmen", "Компании"),
            Entity::Contacts => ("Contacts", "Kontakte", "Контакты"),
            Entity::Leads => ("Leads", "Leads", "Лиды"),
            Entity::Deals => ("Deals", "Geschäfte", "Сделки"),
            Entity::Activities => ("Activities", "Aktivitäten", "Дела"),
            Entity::Products => ("Products", "Produkte", "Товары"),
            Entity::Invoices => ("Invoices", "Rechnungen", "Счета"),
            Entity::Payments => ("Payments", "Zahlungen", "Оплаты"),
            Entity::ProductGroups => ("Product groups", "Produktgruppen", "Группы товаров"),
            Entity::Properties => ("Properties", "Eigenschaften", "Свойства"),
            Entity::Offers => ("Offers", "Angebote", "Предложения"),
            Entity::PriceTypes => ("Price types", "Preisarten", "Типы цен"),
            Entity::Warehouses => ("Warehouses", "Lager", "Склады"),
            Entity::Users => ("Users", "Benutzer", "Пользователи"),
            Entity::Roles => ("Roles", "Rollen", "Роли"),
            Entity::Teams => ("Teams", "Teams", "Команды"),
            Entity::Fields => ("Custom fields", "Eigene Felder", "Свои поля"),
            Entity::OnecDatabases => ("1C databases", "1C-Datenbanken", "Базы 1С"),
            Entity::ImportTemplates => ("Import templates", "Importvorlagen", "Шаблоны импорта"),
        };
        match self {
            Lang::En => en,
            Lang::De => de,
            Lang::Ru => ru,
        }
    }

    /// A stored time (RFC 3339, UTC) as this language writes a date and time, in UTC.
    pub fn time(self, rfc3339: &str) -> String {
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
            return rfc3339.to_string();
        };
        let t = t.with_timezone(&chrono::Utc);
        match self {
            Lang::En => t.format("%Y-%m-%d %H:%M UTC").to_string(),
            Lang::De | Lang::Ru => t.format("%d.%m.%Y %H:%M UTC").to_string(),
        }
    }

    /// A whole number with this language's digit grouping.
    pub fn count(self, n: u64) -> String {
        let sep = match self {
            Lang::En => ',',
            Lang::De => '.',
            Lang::Ru => '\u{a0}',
        };
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(sep);
            }
            out.push(c);
        }
        out
    }
}

impl Lang {
    /// How many records a list has, worded for the number: "1 record", "3 записи", and after
    /// "about" or "more than" (`qualified`) as those words want it ("более 10 000 записей").
    pub fn records(self, n: u64, qualified: bool) -> String {
        let word = match self {
            Lang::En => {
                if n == 1 && !qualified {
                    "record"
                } else {
                    "records"
                }
            }
            Lang::De => {
                if n == 1 && !qualified {
                    "Datensatz"
                } else {
                    "Datensätze"
                }
            }
            Lang::Ru => {
                let (tens, ones) = (n % 100, n % 10);
                match (qualified, ones) {
                    _ if (11..=14).contains(&tens) => "записей",
                    (false, 1) => "запись",
                    (false, 2..=4) => "записи",
                    (true, 1) => "записи",
                    _ => "записей",
                }
            }
        };
        format!("{} {word}", self.count(n))
    }

    /// An exact decimal as stored (`"-1234.50"`) with this language's grouping and decimal sign.
    pub fn decimal(self, stored: &str) -> String {
        let (sign, digits) = match stored.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", stored),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let Ok(n) = int.parse::<u64>() else {
            return stored.to_string();
        };
        let point = match self {
            Lang::En => '.',
            Lang::De | Lang::Ru => ',',
        };
        let mut out = format!("{sign}{}", self.count(n));
        if !frac.is_empty() {
            out.push(point);
            out.push_str(frac);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_spoken_language_of_the_browser_wins() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::ACCEPT_LANGUAGE,
            "fr-CH, fr;q=0.9, de-DE;q=0.8, ru;q=0.7".parse().unwrap(),
        );
        assert_eq!(Lang::from_headers(&h), Lang::De);
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::En);
    }

    #[test]
    fn numbers_and_times_as_each_language_writes_them() {
        assert_eq!(Lang::En.count(1234567), "1,234,567");
        assert_eq!(Lang::De.count(1234567), "1.234.567");
        assert_eq!(Lang::Ru.count(999), "999");
        assert_eq!(Lang::Ru.records(1, false), "1 запись");
        assert_eq!(Lang::Ru.records(22, false), "22 записи");
        assert_eq!(Lang::Ru.records(12, false), "12 записей");
        assert_eq!(Lang::Ru.records(10_000, true), "10\u{a0}000 записей");
        assert_eq!(Lang::En.records(1, false), "1 record");
        assert_eq!(Lang::De.records(2, false), "2 Datensätze");
        assert_eq!(
            Lang::De.time("2026-12-07T09:05:00.000000Z"),
            "07.12.2026 09:05 UTC"
        );
        assert_eq!(Lang::De.decimal("-1234567.50"), "-1.234.567,50");
        assert_eq!(Lang::En.decimal("1500.00"), "1,500.00");
        assert_eq!(Lang::Ru.decimal("12"), "12");
    }
}
