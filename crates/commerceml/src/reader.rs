//! The pull reader: walks the structure of a CommerceML file (root, sections, lists, containers,
//! nested groups) and hands out one [`Item`] per record, in document order, holding no more than
//! one record in memory.

use std::collections::VecDeque;
use std::io::BufRead;

use crate::catalog;
use crate::documents;
use crate::fields::flag;
use crate::items::{Group, Header, Item, Located, Section};
use crate::read::{Ev, Limits, ReadError, Xml};
use crate::tags::Tag;
use crate::values::parse_bool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SectionKind {
    Classifier,
    Catalog,
    OfferPackage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    Groups,
    Properties,
    PriceTypes,
    Warehouses,
    Units,
    Products,
    Offers,
    Counterparties,
}

/// An open structural element (records are read whole and have no frame).
#[derive(Debug)]
enum Frame {
    Root,
    Section {
        kind: SectionKind,
        line: u64,
        section: Section,
        emitted: bool,
    },
    List {
        kind: ListKind,
        /// For `Группы` inside a `Группа`: that group's `Ид`.
        parent: Option<String>,
    },
    Group {
        line: u64,
        group: Group,
        emitted: bool,
    },
    Container(u32),
}

/// A streaming CommerceML reader over any buffered input.
///
/// ```
/// # fn main() -> Result<(), kontor_commerceml::ReadError> {
/// let xml = "<КоммерческаяИнформация ВерсияСхемы=\"2.05\"><Каталог><Ид>c</Ид><Товары>\
///            <Товар><Ид>p1</Ид><Наименование>Стол</Наименование></Товар></Товары></Каталог>\
///            </КоммерческаяИнформация>";
/// let mut reader = kontor_commerceml::Reader::new(xml.as_bytes())?;
/// let mut names = Vec::new();
/// while let Some(located) = reader.next_item()? {
///     if let kontor_commerceml::Item::Product(p) = located.item {
///         names.push(p.name.unwrap_or_default());
///     }
/// }
/// assert_eq!(names, ["Стол"]);
/// assert_eq!(reader.schema_version(), Some("2.05"));
/// # Ok(())
/// # }
/// ```
pub struct Reader<R> {
    x: Xml<R>,
    frames: Vec<Frame>,
    queue: VecDeque<Located<Item>>,
    schema_version: Option<String>,
    containers: u32,
    seen_root: bool,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    /// A reader with the default [`Limits`]. Reads the XML declaration to find the encoding.
    pub fn new(input: R) -> Result<Reader<R>, ReadError> {
        Self::with_limits(input, Limits::default())
    }

    /// A reader with the given limits.
    pub fn with_limits(input: R, limits: Limits) -> Result<Reader<R>, ReadError> {
        Ok(Reader {
            x: Xml::new(input, limits)?,
            frames: Vec::new(),
            queue: VecDeque::new(),
            schema_version: None,
            containers: 0,
            seen_root: false,
            done: false,
        })
    }

    /// Input bytes read so far: divide by the file size for progress.
    pub fn bytes_read(&self) -> u64 {
        self.x.bytes_read()
    }

    /// `ВерсияСхемы` of the root, once the root was read.
    pub fn schema_version(&self) -> Option<&str> {
        self.schema_version.as_deref()
    }

    /// The next item, `None` after the root element's end. After an error the reader should not
    /// be used further.
    pub fn next_item(&mut self) -> Result<Option<Located<Item>>, ReadError> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Ok(Some(item));
            }
            if self.done {
                return Ok(None);
            }
            match self.x.next(false)? {
                Ev::Start(tag) => self.start(tag)?,
                Ev::End => self.end(),
                Ev::Text => {}
                Ev::Eof if !self.seen_root => {
                    return Err(self
                        .x
                        .error("no root element: the file is empty or not XML"))
                }
                Ev::Eof => self.done = true,
            }
        }
    }

    fn emit(&mut self, line: u64, item: Item) {
        self.queue.push_back(Located { line, item });
    }

    fn start(&mut self, tag: Tag) -> Result<(), ReadError> {
        let line = self.x.start_line();
        let empty = self.x.is_empty();
        let Some(top) = self.frames.last_mut() else {
            return self.root(line, empty);
        };
        match top {
            Frame::Root => match tag {
                Tag::Classifier => self.section(SectionKind::Classifier, line, empty, None),
                Tag::Catalog => self.section(SectionKind::Catalog, line, empty, None),
                Tag::OfferPackage => self.section(SectionKind::OfferPackage, line, empty, None),
                Tag::OfferPackageChanges => {
                    self.section(SectionKind::OfferPackage, line, empty, Some(true))
                }
                Tag::Document => self.record(tag, line, None),
                Tag::Container => {
                    let index = self.containers;
                    self.containers = self.containers.saturating_add(1);
                    if !empty {
                        self.frames.push(Frame::Container(index));
                    }
                    Ok(())
                }
                Tag::Counterparties => {
                    let section = Section {
                        only_changes: self.x.attr("СодержитТолькоИзменения").and_then(parse_bool),
                        ..Section::default()
                    };
                    self.emit(line, Item::Counterparties(section));
                    if !empty {
                        self.frames.push(Frame::List {
                            kind: ListKind::Counterparties,
                            parent: None,
                        });
                    }
                    Ok(())
                }
                _ => self.x.skip(),
            },
            Frame::Container(index) => match tag {
                Tag::Document => {
                    let index = Some(*index);
                    self.record(tag, line, index)
                }
                _ => self.x.skip(),
            },
            Frame::Section {
                section, emitted, ..
            } => {
                let slot = match tag {
                    Tag::Id => Some(&mut section.id),
                    Tag::Name => Some(&mut section.name),
                    Tag::CatalogId => Some(&mut section.catalog_id),
                    Tag::ClassifierId => Some(&mut section.classifier_id),
                    Tag::Description => Some(&mut section.description),
                    _ => None,
                };
                if let Some(slot) = slot {
                    if *emitted {
                        return self.x.skip();
                    }
                    if let Some(v) = self.x.opt_text()? {
                        *slot = Some(v);
                    }
                    return Ok(());
                }
                let kind = match tag {
                    Tag::Groups => ListKind::Groups,
                    Tag::Properties => ListKind::Properties,
                    Tag::PriceTypes => ListKind::PriceTypes,
                    Tag::Warehouses => ListKind::Warehouses,
                    Tag::Units => ListKind::Units,
                    Tag::Products => ListKind::Products,
                    Tag::Offers => ListKind::Offers,
                    Tag::Counterparties => ListKind::Counterparties,
                    _ => return self.x.skip(),
                };
                self.flush_section();
                if !empty {
                    self.frames.push(Frame::List { kind, parent: None });
                }
                Ok(())
            }
            Frame::List { kind, parent } => {
                let kind = *kind;
                match (kind, tag) {
                    (ListKind::Groups, Tag::Group) => {
                        let group = Group {
                            parent_id: parent.clone(),
                            ..Group::default()
                        };
                        if empty {
                            self.emit(line, Item::Group(group));
                        } else {
                            self.x.begin_record();
                            self.frames.push(Frame::Group {
                                line,
                                group,
                                emitted: false,
                            });
                        }
                        Ok(())
                    }
                    (ListKind::Properties, Tag::Property | Tag::ProductProperty)
                    | (ListKind::PriceTypes, Tag::PriceType)
                    | (ListKind::Warehouses, Tag::Warehouse)
                    | (ListKind::Units, Tag::UnitOfMeasure)
                    | (ListKind::Products, Tag::Product)
                    | (ListKind::Offers, Tag::Offer)
                    | (ListKind::Counterparties, Tag::Counterparty) => self.record(tag, line, None),
                    _ => self.x.skip(),
                }
            }
            Frame::Group { group, emitted, .. } => {
                match tag {
                    Tag::Groups => {}
                    _ if *emitted => return self.x.skip(),
                    Tag::Id => group.id = self.x.text()?,
                    Tag::Name => group.name = self.x.opt_text()?,
                    Tag::Description => group.description = self.x.opt_text()?,
                    Tag::Deleted => group.deleted = flag(&mut self.x)?,
                    Tag::Version => group.version = self.x.opt_text()?,
                    _ => return self.x.skip(),
                }
                if tag == Tag::Groups {
                    // Nested groups: emit this one first, so children follow their parent.
                    let parent = Some(group.id.clone());
                    self.flush_group();
                    if !empty {
                        self.frames.push(Frame::List {
                            kind: ListKind::Groups,
                            parent,
                        });
                    }
                }
                Ok(())
            }
        }
    }

    fn root(&mut self, line: u64, empty: bool) -> Result<(), ReadError> {
        let name = self.x.current_name();
        if name.to_lowercase() != "коммерческаяинформация" {
            return Err(self.x.error(format!(
                "not a CommerceML file: the root element is <{name}>, not <КоммерческаяИнформация>"
            )));
        }
        self.seen_root = true;
        let owned = |v: Option<&str>| v.map(str::to_owned);
        let header = Header {
            schema_version: owned(self.x.attr_ignore_case("ВерсияСхемы")).unwrap_or_default(),
            generated_at: owned(self.x.attr_ignore_case("ДатаФормирования")),
            root_id: owned(self.x.attr_ignore_case("Ид")),
        };
        self.schema_version = Some(header.schema_version.clone());
        self.emit(line, Item::Header(header));
        if empty {
            self.done = true;
        } else {
            self.frames.push(Frame::Root);
        }
        Ok(())
    }

    fn section(
        &mut self,
        kind: SectionKind,
        line: u64,
        empty: bool,
        default_only_changes: Option<bool>,
    ) -> Result<(), ReadError> {
        let section = Section {
            only_changes: self
                .x
                .attr("СодержитТолькоИзменения")
                .and_then(parse_bool)
                .or(default_only_changes),
            ..Section::default()
        };
        self.frames.push(Frame::Section {
            kind,
            line,
            section,
            emitted: false,
        });
        if empty {
            self.flush_section();
            self.frames.pop();
        }
        Ok(())
    }

    /// Emits the section on top of the stack unless it was already.
    fn flush_section(&mut self) {
        if let Some(Frame::Section {
            kind,
            line,
            section,
            emitted: emitted @ false,
        }) = self.frames.last_mut()
        {
            *emitted = true;
            let section = std::mem::take(section);
            let item = match kind {
                SectionKind::Classifier => Item::Classifier(section),
                SectionKind::Catalog => Item::Catalog(section),
                SectionKind::OfferPackage => Item::OfferPackage(section),
            };
            let line = *line;
            self.emit(line, item);
        }
    }

    /// Emits the group on top of the stack unless it was already.
    fn flush_group(&mut self) {
        if let Some(Frame::Group {
            line,
            group,
            emitted: emitted @ false,
        }) = self.frames.last_mut()
        {
            *emitted = true;
            let item = Item::Group(group.clone());
            let line = *line;
            self.emit(line, item);
        }
    }

    fn end(&mut self) {
        match self.frames.last() {
            Some(Frame::Section { .. }) => self.flush_section(),
            Some(Frame::Group { .. }) => self.flush_group(),
            Some(Frame::Root) => self.done = true,
            _ => {}
        }
        self.frames.pop();
    }

    /// Reads one whole record.
    fn record(&mut self, tag: Tag, line: u64, container: Option<u32>) -> Result<(), ReadError> {
        self.x.begin_record();
        let x = &mut self.x;
        let item = match tag {
            Tag::Document => Item::Document(documents::document(x, container)?),
            Tag::Counterparty => Item::Counterparty(documents::counterparty(x)?),
            Tag::Property | Tag::ProductProperty => Item::Property(catalog::property(x)?),
            Tag::PriceType => Item::PriceType(catalog::price_type(x)?),
            Tag::Warehouse => Item::Warehouse(catalog::warehouse(x)?),
            Tag::UnitOfMeasure => Item::Unit(catalog::unit_of_measure(x)?),
            Tag::Product => Item::Product(catalog::product(x)?),
            Tag::Offer => Item::Offer(catalog::offer(x)?),
            _ => return x.skip(),
        };
        self.emit(line, item);
        Ok(())
    }
}
