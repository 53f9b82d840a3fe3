//! The face map: a drawn front view of a face whose treatment zones are the click
//! targets for choosing the zone to treat.
//!
//! The drawing is vector shapes in a fixed 4 : 5 box, scaled to fit the space given.
//! Each zone is one or more convex pieces, and each piece is the intersection of a few
//! primitives (ellipses, rectangles, convex polygons) in normalized box coordinates: the
//! geometry is data, and one pure function, [`zone_at`], says which zone a point is in.
//!
//! Zones overlap on purpose. [`HIT_ORDER`] lists them from the most specific to the
//! least, and the first that contains a point owns it: the eye area wins over the cheek
//! and forehead, the nose over the cheeks, the mouth area over the chin, and every face
//! zone over the scalp (which is simply the whole head). The painter fills the same list
//! backwards, so what is on top is what is hit, and it draws a boundary only where the
//! hit-test's owner changes, so the lines on screen are the hit-test's own.
//!
//! Body zones (stretch marks, scars) have no place on a face: the body is a labelled box
//! beside the drawing, and a region like the others.
//!
//! Painted shapes have no accessibility node, so each zone also gets an invisible button
//! over its limit label, named `zone <id>` (`zone periorbital`). Screen readers, the
//! keyboard (Tab to a zone, then Enter or Space) and `egui_kittest` reach the zones
//! through these buttons.

use egui::{
    Color32, FontId, Painter, Pos2, Rect, Response, Role, Sense, Shape, Stroke, StrokeKind,
    Tooltip, Ui, Vec2, Visuals, WidgetInfo,
};

use crate::safety::interlock::mm;
use crate::safety::zones::{Zone, ZoneId, ZoneTable};

// Palette. Mid-light fills, dark strokes, dark label text on a light pill: the map
// carries its own contrast, so it reads the same on egui's dark and light themes.
// (To move into the theme file.)

/// A zone not yet treated this session: plain skin.
const SKIN: Color32 = Color32::from_rgb(0xEE, 0xD2, 0xB8);
/// Ears and the body silhouette: skin in shadow, not a zone of its own.
const SKIN_SHADE: Color32 = Color32::from_rgb(0xD8, 0xB3, 0x95);
/// The zone being treated now: a strong blue, far from skin and from the treated green.
const ACTIVE_FILL: Color32 = Color32::from_rgb(0x5C, 0xA9, 0xF2);
/// The active zone's thick outline.
const ACTIVE_STROKE: Color32 = Color32::from_rgb(0x0A, 0x3A, 0x8A);
/// A light band under the active outline, so the outline stands out on a dark panel too.
const ACTIVE_HALO: Color32 = Color32::from_rgba_unmultiplied_const(0xFF, 0xFF, 0xFF, 0xD0);
/// A zone treated this session: muted green.
const TREATED_FILL: Color32 = Color32::from_rgb(0xA4, 0xCB, 0x9E);
/// The check mark on a treated zone's label: the state must not hang on colour alone.
const TREATED_MARK: Color32 = Color32::from_rgb(0x2F, 0x6E, 0x35);
/// Zone boundaries and the silhouette.
const OUTLINE: Color32 = Color32::from_rgb(0x8C, 0x65, 0x4C);
/// The zone under the pointer or the keyboard focus: what a click would choose.
const HOVER_STROKE: Color32 = Color32::from_rgb(0xD9, 0x6C, 0x00);
/// Brows, eyes, nostrils, mouth, hair: drawing, not zones.
const FEATURE: Color32 = Color32::from_rgb(0x5A, 0x3F, 0x30);
/// The whites of the eyes.
const EYE_WHITE: Color32 = Color32::from_rgb(0xFA, 0xF7, 0xF2);
/// The lips.
const LIPS: Color32 = Color32::from_rgb(0xC8, 0x7F, 0x76);
/// The limit labels' pill: nearly opaque, so the text is legible on every fill.
const LABEL_FILL: Color32 = Color32::from_rgba_unmultiplied_const(0xFF, 0xFF, 0xFF, 0xE6);
/// The limit labels' text.
const LABEL_TEXT: Color32 = Color32::from_rgb(0x1C, 0x1C, 0x1C);

/// A zone's treatment state this session, which sets its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ZoneState {
    /// Not treated yet.
    #[default]
    NotTreated,
    /// Being treated now.
    Active,
    /// Treated earlier in the session.
    Treated,
}

impl ZoneState {
    /// The state in words, for the tooltip and the legend.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotTreated => "not treated",
            Self::Active => "active",
            Self::Treated => "treated",
        }
    }

    fn fill(self) -> Color32 {
        match self {
            Self::NotTreated => SKIN,
            Self::Active => ACTIVE_FILL,
            Self::Treated => TREATED_FILL,
        }
    }
}

/// What [`face_map_ui`] reports for one frame.
#[derive(Debug, Clone)]
pub struct FaceMapResponse {
    /// The map and its zone buttons together.
    pub response: Response,
    /// The zone chosen this frame (pointer, keyboard or accessibility action); `None` when
    /// the map is disabled.
    pub clicked: Option<ZoneId>,
    /// The zone under the pointer, disabled or not.
    pub hovered: Option<ZoneId>,
}

// Geometry. Written on a 400 × 500 design grid for readability and stored normalized
// (0..1 on both axes of the 4 : 5 box) by `p`, `ellipse` and `rect`.

/// The design grid: the box's size at scale 1, which is also its aspect ratio.
const GRID: Vec2 = Vec2::new(400.0, 500.0);

/// Below this scale the labels would be illegible; the map overflows rather than shrink.
const MIN_SCALE: f32 = 0.4;

/// A limit label's pill, design units: room for "0.30" over "mm" at scale 1.
const LABEL_SIZE: Vec2 = Vec2::new(32.0, 24.0);

/// Segments in a drawn ellipse: the chord's sag is under 0.1 px at scale 1.
const ELLIPSE_SEGMENTS: u16 = 96;

/// A design-grid point, normalized.
const fn p(x: f32, y: f32) -> Pos2 {
    Pos2::new(x / GRID.x, y / GRID.y)
}

/// A convex region in normalized coordinates.
#[derive(Debug, Clone, Copy)]
enum Primitive {
    /// An axis-aligned ellipse.
    Ellipse { center: Pos2, radius: Vec2 },
    /// An axis-aligned rectangle; also serves as a half-plane.
    Rect(Rect),
    /// A convex polygon (a test checks convexity).
    Polygon(&'static [Pos2]),
}

/// An ellipse from design units.
const fn ellipse(cx: f32, cy: f32, rx: f32, ry: f32) -> Primitive {
    Primitive::Ellipse {
        center: p(cx, cy),
        radius: Vec2::new(rx / GRID.x, ry / GRID.y),
    }
}

/// A rectangle from design units.
const fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Primitive {
    Primitive::Rect(Rect {
        min: p(x0, y0),
        max: p(x1, y1),
    })
}

impl Primitive {
    fn contains(&self, n: Pos2) -> bool {
        match self {
            Self::Ellipse { center, radius } => {
                let d = (n - *center) / *radius;
                d.length_sq() <= 1.0
            }
            Self::Rect(r) => r.contains(n),
            Self::Polygon(points) => polygon_contains(points, n),
        }
    }

    /// The boundary as a convex polygon, normalized.
    fn outline(&self) -> Vec<Pos2> {
        match self {
            Self::Ellipse { center, radius } => (0..ELLIPSE_SEGMENTS)
                .map(|i| {
                    let t = f32::from(i) / f32::from(ELLIPSE_SEGMENTS) * std::f32::consts::TAU;
                    *center + Vec2::new(t.cos(), t.sin()) * *radius
                })
                .collect(),
            Self::Rect(r) => vec![
                r.left_top(),
                r.right_top(),
                r.right_bottom(),
                r.left_bottom(),
            ],
            Self::Polygon(points) => points.to_vec(),
        }
    }
}

/// One convex piece of a zone: the points inside all of its primitives.
type Piece = &'static [Primitive];

/// A zone's region and where its labels go.
#[derive(Debug)]
struct ZoneShape {
    zone: ZoneId,
    /// The zone is the union of these.
    pieces: &'static [Piece],
    /// Centres of the limit labels, one per piece (both eyes, both cheeks are labelled).
    /// The first is the zone button's centre: where a keyboard user's focus ring and an
    /// accessibility click land, so it lies in the zone and in no more specific one.
    labels: &'static [Pos2],
}

impl ZoneShape {
    fn contains(&self, n: Pos2) -> bool {
        self.pieces
            .iter()
            .any(|piece| piece.iter().all(|prim| prim.contains(n)))
    }
}

/// The head: an ellipse that every face zone is cut from.
const HEAD: Primitive = ellipse(165.0, 177.5, 88.0, 130.0);

/// The ears: drawing only. Treatment stops at the face's edge, so they hit nothing.
const EARS: [Primitive; 2] = [
    ellipse(78.0, 182.0, 11.0, 23.0),
    ellipse(252.0, 182.0, 11.0, 23.0),
];

const NOSE_POLYGON: &[Pos2] = &[
    p(158.0, 145.0),
    p(172.0, 145.0),
    p(190.0, 212.0),
    p(180.0, 222.0),
    p(150.0, 222.0),
    p(140.0, 212.0),
];

const NECK_POLYGON: &[Pos2] = &[
    p(130.0, 255.0),
    p(200.0, 255.0),
    p(205.0, 352.0),
    p(125.0, 352.0),
];

/// Shoulders and upper chest; the neck covers its top edge.
const DECOLLETE_POLYGON: &[Pos2] = &[
    p(125.0, 342.0),
    p(205.0, 342.0),
    p(280.0, 368.0),
    p(300.0, 395.0),
    p(306.0, 495.0),
    p(24.0, 495.0),
    p(30.0, 395.0),
    p(50.0, 368.0),
];

/// The body box, beside the shoulders.
const BODY_BOX: Primitive = rect(318.0, 336.0, 396.0, 494.0);

const NOSE: ZoneShape = ZoneShape {
    zone: ZoneId::Nose,
    pieces: &[&[Primitive::Polygon(NOSE_POLYGON)]],
    labels: &[p(165.0, 200.0)],
};

const PERIORBITAL: ZoneShape = ZoneShape {
    zone: ZoneId::Periorbital,
    pieces: &[
        &[ellipse(124.0, 160.0, 40.0, 32.0)],
        &[ellipse(206.0, 160.0, 40.0, 32.0)],
    ],
    // Below the eyes, so the labels leave the eyes visible.
    labels: &[p(124.0, 175.0), p(206.0, 175.0)],
};

const PERIORAL: ZoneShape = ZoneShape {
    zone: ZoneId::Perioral,
    pieces: &[&[ellipse(165.0, 244.0, 48.0, 29.0)]],
    labels: &[p(165.0, 257.0)],
};

const CHEEKS: ZoneShape = ZoneShape {
    zone: ZoneId::Cheeks,
    // Each cheek stops at the midline; below the cheeks' lower arcs is the jawline.
    pieces: &[
        &[
            HEAD,
            ellipse(120.0, 205.0, 56.0, 62.0),
            rect(0.0, 0.0, 165.0, 500.0),
        ],
        &[
            HEAD,
            ellipse(210.0, 205.0, 56.0, 62.0),
            rect(165.0, 0.0, 400.0, 500.0),
        ],
    ],
    labels: &[p(108.0, 212.0), p(222.0, 212.0)],
};

const CHIN_JAWLINE: ZoneShape = ZoneShape {
    zone: ZoneId::ChinJawline,
    // The lower face; the cheeks and the mouth area cover all of it but the jaw's band.
    pieces: &[&[HEAD, rect(0.0, 200.0, 400.0, 500.0)]],
    labels: &[p(165.0, 289.0)],
};

const FOREHEAD: ZoneShape = ZoneShape {
    zone: ZoneId::Forehead,
    // The dome's upper arc is the hairline; the temples outside it stay scalp.
    pieces: &[&[
        HEAD,
        ellipse(165.0, 150.0, 80.0, 55.0),
        rect(0.0, 0.0, 400.0, 165.0),
    ]],
    labels: &[p(165.0, 115.0)],
};

const SCALP: ZoneShape = ZoneShape {
    zone: ZoneId::Scalp,
    // The whole head: every face zone comes first in the hit order.
    pieces: &[&[HEAD]],
    labels: &[p(165.0, 75.0)],
};

const NECK: ZoneShape = ZoneShape {
    zone: ZoneId::Neck,
    pieces: &[&[Primitive::Polygon(NECK_POLYGON)]],
    labels: &[p(165.0, 326.0)],
};

const DECOLLETE: ZoneShape = ZoneShape {
    zone: ZoneId::Decollete,
    pieces: &[&[Primitive::Polygon(DECOLLETE_POLYGON)]],
    labels: &[p(165.0, 420.0)],
};

const BODY: ZoneShape = ZoneShape {
    zone: ZoneId::Body,
    pieces: &[&[BODY_BOX]],
    // Low in the box: the caption and the silhouette take the top.
    labels: &[p(357.0, 474.0)],
};

/// The zones from the most specific to the least: the first that contains a point owns
/// it. The painter fills them in reverse.
const HIT_ORDER: [&ZoneShape; 10] = [
    &NOSE,
    &PERIORBITAL,
    &PERIORAL,
    &CHEEKS,
    &CHIN_JAWLINE,
    &FOREHEAD,
    &SCALP,
    &NECK,
    &DECOLLETE,
    &BODY,
];

/// The zone buttons' order, which is the Tab order: top to bottom, then the body.
const TAB_ORDER: [ZoneId; 10] = [
    ZoneId::Scalp,
    ZoneId::Forehead,
    ZoneId::Periorbital,
    ZoneId::Nose,
    ZoneId::Cheeks,
    ZoneId::Perioral,
    ZoneId::ChinJawline,
    ZoneId::Neck,
    ZoneId::Decollete,
    ZoneId::Body,
];

fn shape_of(zone: ZoneId) -> &'static ZoneShape {
    match zone {
        ZoneId::Forehead => &FOREHEAD,
        ZoneId::Periorbital => &PERIORBITAL,
        ZoneId::Nose => &NOSE,
        ZoneId::Cheeks => &CHEEKS,
        ZoneId::Perioral => &PERIORAL,
        ZoneId::ChinJawline => &CHIN_JAWLINE,
        ZoneId::Neck => &NECK,
        ZoneId::Decollete => &DECOLLETE,
        ZoneId::Scalp => &SCALP,
        ZoneId::Body => &BODY,
    }
}

/// Where the map's fixed-aspect box sits on screen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceLayout {
    /// The box: the largest 4 : 5 rectangle centred in the rect given.
    rect: Rect,
}

impl FaceLayout {
    /// Fits the map's 4 : 5 box into `rect`, centred; a rect of another aspect leaves
    /// margins on two sides.
    #[must_use]
    pub fn new(rect: Rect) -> Self {
        // `max` also turns a NaN (from an empty or inverted rect) into 0.
        let scale = (rect.width() / GRID.x).min(rect.height() / GRID.y).max(0.0);
        Self {
            rect: Rect::from_center_size(rect.center(), GRID * scale),
        }
    }

    /// The box the map is drawn in.
    #[must_use]
    pub fn rect(&self) -> Rect {
        self.rect
    }

    /// Screen points per design unit: 1 for a 400 × 500 box.
    #[must_use]
    pub fn scale(&self) -> f32 {
        self.rect.width() / GRID.x
    }

    /// Where the centre of `zone`'s button is: inside the zone and inside no more
    /// specific zone, so a click there selects `zone`.
    #[must_use]
    pub fn anchor(&self, zone: ZoneId) -> Pos2 {
        self.screen_pos(shape_of(zone).labels.first().copied().unwrap_or_default())
    }

    /// `zone`'s button: its (first) limit label, centred on [`Self::anchor`].
    #[must_use]
    pub fn target_rect(&self, zone: ZoneId) -> Rect {
        Rect::from_center_size(self.anchor(zone), LABEL_SIZE * self.scale())
    }

    fn screen_pos(&self, n: Pos2) -> Pos2 {
        self.rect.min + n.to_vec2() * self.rect.size()
    }

    fn normalized_pos(&self, pos: Pos2) -> Option<Pos2> {
        let size = self.rect.size();
        (size.x > 0.0 && size.y > 0.0).then(|| ((pos - self.rect.min) / size).to_pos2())
    }

    /// A design-grid point on screen.
    fn at(&self, x: f32, y: f32) -> Pos2 {
        self.screen_pos(p(x, y))
    }
}

/// The zone at screen position `pos`, or `None` off the drawing (background, ears,
/// legend). Where zones overlap the more specific one wins (see [`HIT_ORDER`]). Pure.
#[must_use]
pub fn zone_at(layout: &FaceLayout, pos: Pos2) -> Option<ZoneId> {
    let n = layout.normalized_pos(pos)?;
    HIT_ORDER
        .iter()
        .find(|shape| shape.contains(n))
        .map(|shape| shape.zone)
}

/// The face map: draws the zones coloured by `states`, labelled with `zones`' limits,
/// and reports the zone clicked and the zone hovered. It takes the available space,
/// keeping the drawing's 4 : 5 aspect. Hovering a zone shows its depths in a tooltip,
/// disabled or not; when `enabled` is false (no session) the map is dimmed and nothing
/// can be chosen.
pub fn face_map_ui(
    ui: &mut Ui,
    zones: &ZoneTable,
    states: &dyn Fn(ZoneId) -> ZoneState,
    enabled: bool,
) -> FaceMapResponse {
    ui.add_enabled_ui(enabled, |ui| map_ui(ui, zones, states))
        .inner
}

fn map_ui(ui: &mut Ui, zones: &ZoneTable, states: &dyn Fn(ZoneId) -> ZoneState) -> FaceMapResponse {
    // Not focusable: Tab goes to the zone buttons, not to the picture.
    let (rect, canvas) = ui.allocate_exact_size(fitted_size(ui.available_size()), Sense::CLICK);
    let enabled = ui.is_enabled();
    canvas.widget_info(|| WidgetInfo::labeled(Role::Image, enabled, "face map"));
    let layout = FaceLayout::new(rect);

    // The buttons come after the canvas, so they lie on top of it and win its clicks.
    let buttons: Vec<(ZoneId, Response)> = TAB_ORDER
        .into_iter()
        .map(|zone| {
            let id = canvas.id.with(zone.as_str());
            let button = ui.interact(layout.target_rect(zone), id, Sense::click());
            let active = states(zone) == ZoneState::Active;
            button.widget_info(|| {
                WidgetInfo::selected(Role::Button, enabled, active, format!("zone {zone}"))
            });
            (zone, button)
        })
        .collect();

    let clicked = if let Some((zone, _)) = buttons.iter().find(|(_, b)| b.clicked()) {
        Some(*zone)
    } else if canvas.clicked() {
        // An accessibility click on the picture itself has no position: it chooses nothing.
        canvas
            .interact_pointer_pos()
            .and_then(|pos| zone_at(&layout, pos))
    } else {
        None
    };

    // `contains_pointer`, unlike `hovered`, holds on a disabled widget too: the depths
    // are worth reading before a session starts.
    let over_button = buttons.iter().find(|(_, b)| b.contains_pointer());
    let (hovered, hover_owner) = match over_button {
        Some((zone, button)) => (Some(*zone), button),
        None if canvas.contains_pointer() => (
            ui.input(|i| i.pointer.hover_pos())
                .and_then(|pos| zone_at(&layout, pos)),
            &canvas,
        ),
        None => (None, &canvas),
    };
    let focused = buttons
        .iter()
        .find(|(_, b)| b.has_focus())
        .map(|(zone, _)| *zone);

    if ui.is_rect_visible(rect) {
        let highlight = if enabled { hovered.or(focused) } else { None };
        paint_map(ui, &layout, zones, states, highlight, focused);
    }
    if let Some(zone) = hovered {
        zone_tooltip(hover_owner, zones.zone(zone), states(zone));
    }

    let response = buttons
        .into_iter()
        .fold(canvas, |acc, (_, button)| acc.union(button));
    FaceMapResponse {
        response,
        clicked,
        hovered,
    }
}

/// The largest 4 : 5 size within `available`, or the design size where the space is
/// unbounded (a scroll area's height), never below [`MIN_SCALE`].
fn fitted_size(available: Vec2) -> Vec2 {
    let scale_along = |space: f32, grid: f32| {
        if space.is_finite() && space > 0.0 {
            space / grid
        } else {
            f32::INFINITY
        }
    };
    let scale = scale_along(available.x, GRID.x).min(scale_along(available.y, GRID.y));
    let scale = if scale.is_finite() { scale } else { 1.0 };
    GRID * scale.max(MIN_SCALE)
}

/// The zone's depths at the pointer. Built by hand rather than with
/// `on_hover_ui_at_pointer`, which shows nothing on a disabled widget.
fn zone_tooltip(owner: &Response, zone: &Zone, state: ZoneState) {
    let show = Tooltip::should_show_tooltip(owner, false);
    let mut tooltip = Tooltip::for_widget(owner).at_pointer().gap(12.0);
    tooltip.popup = tooltip.popup.open(show);
    tooltip.show(|ui| {
        // A clinic's table names its zones: shown escaped.
        ui.strong(crate::text::shown(&zone.name));
        egui::Grid::new("face_map_tooltip")
            .num_columns(2)
            .show(ui, |ui| {
                let (low_um, high_um) = zone.typical_um;
                ui.label("Typical");
                ui.label(format!("{}–{}", mm_number(low_um), mm_um(high_um)));
                ui.end_row();
                ui.label("Protocol limit");
                ui.strong(mm_um(zone.limit_um));
                ui.end_row();
                ui.label("Ceiling");
                ui.label(mm_um(zone.ceiling_um));
                ui.end_row();
                ui.label("This session");
                ui.label(state.as_str());
                ui.end_row();
            });
    });
}

/// "0.50 mm".
fn mm_um(depth_um: i32) -> String {
    mm(i64::from(depth_um))
}

/// "0.50", the unit left to the text after it.
fn mm_number(depth_um: i32) -> String {
    let text = mm_um(depth_um);
    text.strip_suffix(" mm").unwrap_or(&text).to_owned()
}

// Drawing.

/// Stroke widths follow the scale, within limits: hairlines vanish on a small map and
/// slabs swamp the labels on a large one.
fn stroke_width(layout: &FaceLayout, width_at_scale_1: f32) -> f32 {
    width_at_scale_1 * layout.scale().clamp(0.75, 2.5)
}

fn paint_map(
    ui: &Ui,
    layout: &FaceLayout,
    zones: &ZoneTable,
    states: &dyn Fn(ZoneId) -> ZoneState,
    highlight: Option<ZoneId>,
    focused: Option<ZoneId>,
) {
    // Full opacity, then an overlay to dim: the fills overlap (each specific zone over
    // the general one), and a translucent painter would show the hidden parts through.
    // The cost: the map does not follow a window's fade-in.
    let mut painter = ui.painter().clone();
    painter.set_opacity(1.0);
    let painter = &painter;
    for ear in EARS {
        painter.add(Shape::convex_polygon(
            screen_points(layout, &ear.outline()),
            SKIN_SHADE,
            Stroke::new(stroke_width(layout, 1.0), OUTLINE),
        ));
    }

    let outlines = zone_outlines(layout);
    for (zone, points) in outlines.iter().rev() {
        painter.add(Shape::convex_polygon(
            points.clone(),
            states(*zone).fill(),
            Stroke::NONE,
        ));
    }
    paint_features(painter, layout);

    let edges: Vec<Vec<Edge>> = outlines
        .iter()
        .map(|(zone, points)| visible_edges(layout, *zone, points))
        .collect();
    let stroke_runs = |stroke: Stroke, keep: &dyn Fn(&Edge) -> bool| {
        for edges in &edges {
            for (points, closed) in runs(edges, keep) {
                painter.add(if closed {
                    Shape::closed_line(points, stroke)
                } else {
                    Shape::line(points, stroke)
                });
            }
        }
    };
    stroke_runs(Stroke::new(stroke_width(layout, 1.0), OUTLINE), &|_| true);
    // A steady thick outline rather than a pulse: an animation would repaint the
    // window every frame for the whole session.
    for zone in TAB_ORDER {
        if states(zone) == ZoneState::Active {
            let touches = |e: &Edge| e.touches(zone);
            stroke_runs(
                Stroke::new(stroke_width(layout, 6.5), ACTIVE_HALO),
                &touches,
            );
            stroke_runs(
                Stroke::new(stroke_width(layout, 3.5), ACTIVE_STROKE),
                &touches,
            );
        }
    }

    // After the active outline, so a hovered active zone still shows what a click hits.
    if let Some(zone) = highlight {
        stroke_runs(Stroke::new(stroke_width(layout, 2.5), HOVER_STROKE), &|e| {
            e.touches(zone)
        });
    }

    paint_body_figure(painter, layout);
    let visuals = ui.visuals();
    for zone in TAB_ORDER {
        paint_labels(
            painter,
            visuals,
            layout,
            zones.zone(zone),
            states(zone),
            focused == Some(zone),
        );
    }
    paint_legend(painter, visuals, layout);
    if !ui.is_enabled() {
        // The same blend egui's own disabled widgets get, towards the panel.
        let veil = visuals
            .panel_fill
            .gamma_multiply(1.0 - visuals.disabled_alpha());
        painter.rect_filled(layout.rect(), 0.0, veil);
    }
}

/// Every piece's outline on screen, zone by zone in [`HIT_ORDER`].
fn zone_outlines(layout: &FaceLayout) -> Vec<(ZoneId, Vec<Pos2>)> {
    HIT_ORDER
        .iter()
        .flat_map(|shape| {
            shape
                .pieces
                .iter()
                .map(move |piece| (shape.zone, screen_points(layout, &piece_outline(piece))))
        })
        .filter(|(_, points)| points.len() >= 3)
        .collect()
}

fn screen_points(layout: &FaceLayout, normalized: &[Pos2]) -> Vec<Pos2> {
    normalized.iter().map(|&n| layout.screen_pos(n)).collect()
}

/// A piece's outline, normalized: its first primitive clipped by each of the others.
fn piece_outline(piece: Piece) -> Vec<Pos2> {
    let mut primitives = piece.iter();
    let Some(first) = primitives.next() else {
        return Vec::new();
    };
    primitives.fold(first.outline(), |subject, clip| {
        clip_convex(&subject, &clip.outline())
    })
}

/// Sutherland–Hodgman: the part of `subject` inside the convex polygon `clip`, in either
/// winding.
fn clip_convex(subject: &[Pos2], clip: &[Pos2]) -> Vec<Pos2> {
    let Some(inner) = centroid(clip) else {
        return Vec::new();
    };
    let mut out = subject.to_vec();
    for (&a, &b) in clip.iter().zip(clip.iter().cycle().skip(1)) {
        let cross = |q: Pos2| (b - a).x * (q - a).y - (b - a).y * (q - a).x;
        // Orient each edge so that the clip polygon's inside is positive.
        let sign = cross(inner).signum();
        let side = |q: Pos2| cross(q) * sign;
        let input = std::mem::take(&mut out);
        let previous = input.iter().cycle().skip(input.len().saturating_sub(1));
        for (&current, &prev) in input.iter().zip(previous) {
            let (s_cur, s_prev) = (side(current), side(prev));
            if (s_cur >= 0.0) != (s_prev >= 0.0) {
                out.push(prev.lerp(current, s_prev / (s_prev - s_cur)));
            }
            if s_cur >= 0.0 {
                out.push(current);
            }
        }
    }
    out
}

fn centroid(points: &[Pos2]) -> Option<Pos2> {
    let (sum, count) = points
        .iter()
        .fold((Vec2::ZERO, 0.0_f32), |(sum, count), q| {
            (sum + q.to_vec2(), count + 1.0)
        });
    (count > 0.0).then(|| (sum / count).to_pos2())
}

/// Even-odd rule.
fn polygon_contains(points: &[Pos2], n: Pos2) -> bool {
    let mut inside = false;
    for (&a, &b) in points.iter().zip(points.iter().cycle().skip(1)) {
        if (a.y > n.y) != (b.y > n.y) && n.x < a.x + (n.y - a.y) / (b.y - a.y) * (b.x - a.x) {
            inside = !inside;
        }
    }
    inside
}

/// A short stretch of a zone's outline that is a visible boundary: the zone owns the
/// side inside it and not the side outside.
#[derive(Debug, Clone, Copy)]
struct Edge {
    from: Pos2,
    to: Pos2,
    inside: ZoneId,
    outside: Option<ZoneId>,
}

impl Edge {
    /// Is this stretch on `zone`'s boundary?
    fn touches(&self, zone: ZoneId) -> bool {
        self.inside == zone || self.outside == Some(zone)
    }
}

/// The outline cut into short stretches, each tagged `Some` where it is one of `zone`'s
/// visible boundaries. Asking the hit-test on both sides, rather than trusting the
/// pieces, draws exactly the lines that clicks obey, and draws each line once: from
/// the piece of the zone that owns its inner side.
fn visible_edges(layout: &FaceLayout, zone: ZoneId, outline: &[Pos2]) -> Vec<Edge> {
    const PROBE_PX: f32 = 0.75;
    let Some(center) = centroid(outline) else {
        return Vec::new();
    };
    let step = 2.0 * layout.scale().max(1.0);
    let mut edges = Vec::new();
    for (&a, &b) in outline.iter().zip(outline.iter().cycle().skip(1)) {
        let length = (b - a).length();
        if length <= f32::EPSILON {
            continue;
        }
        let mut normal = (b - a).rot90() / length;
        if normal.dot(a.lerp(b, 0.5) - center) < 0.0 {
            normal = -normal;
        }
        let count = subdivisions(length, step);
        for k in 0..count {
            let from = a.lerp(b, f32::from(k) / f32::from(count));
            let to = a.lerp(b, f32::from(k + 1) / f32::from(count));
            let mid = from.lerp(to, 0.5);
            let inside = zone_at(layout, mid - normal * PROBE_PX);
            let outside = zone_at(layout, mid + normal * PROBE_PX);
            if inside == Some(zone) && outside != inside {
                edges.push(Edge {
                    from,
                    to,
                    inside: zone,
                    outside,
                });
            }
        }
    }
    edges
}

/// How many stretches of at most `step` make `length`, 1 to 256.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "clamped to 1..=256 before the cast"
)]
fn subdivisions(length: f32, step: f32) -> u16 {
    (length / step).ceil().clamp(1.0, 256.0) as u16
}

/// Joins the consecutive `edges` for which `keep` holds into polylines, so thick strokes
/// get proper joins; `true` marks a polyline that closes on itself.
fn runs(edges: &[Edge], keep: &dyn Fn(&Edge) -> bool) -> Vec<(Vec<Pos2>, bool)> {
    let mut out = Vec::new();
    let mut current: Vec<Pos2> = Vec::new();
    let mut previous_to: Option<Pos2> = None;
    for edge in edges.iter().filter(|e| keep(e)) {
        // A gap (a stretch that was dropped, or not kept) ends the polyline.
        if previous_to.is_some_and(|to| to.distance(edge.from) > 0.01) && current.len() > 1 {
            out.push((std::mem::take(&mut current), false));
        }
        if current.is_empty() {
            current.push(edge.from);
        }
        current.push(edge.to);
        previous_to = Some(edge.to);
    }
    if current.len() > 1 {
        out.push((current, false));
    }
    // The outline starts at an arbitrary vertex: join the last run to the first where it
    // continues through that vertex, or close it where it goes all the way round.
    if out.len() > 1 {
        let first_start = out.first().and_then(|(points, _)| points.first().copied());
        let last_end = out.last().and_then(|(points, _)| points.last().copied());
        if let (Some(start), Some(end)) = (first_start, last_end)
            && start.distance(end) <= 0.01
            && let Some((last, _)) = out.pop()
            && let Some((first, _)) = out.first_mut()
        {
            let mut joined = last;
            joined.extend(first.iter().skip(1));
            *first = joined;
        }
    } else if let Some((points, closed)) = out.first_mut()
        && points.len() > 2
        && let (Some(start), Some(end)) = (points.first(), points.last())
        && start.distance(*end) <= 0.01
    {
        points.pop();
        *closed = true;
    }
    out
}

/// Brows, eyes, nostrils, mouth, hair and collarbones: the drawing that makes the zones
/// read as a face. None of it is a zone.
fn paint_features(painter: &Painter, layout: &FaceLayout) {
    let line = |points: &[(f32, f32)], width: f32, color: Color32| {
        let points = points.iter().map(|&(x, y)| layout.at(x, y)).collect();
        painter.add(Shape::line(
            points,
            Stroke::new(stroke_width(layout, width), color),
        ));
    };
    let scale = layout.scale();
    for mirror in [false, true] {
        // The face is symmetric about x = 165.
        let x = |x: f32| if mirror { 330.0 - x } else { x };
        line(
            &[
                (x(105.0), 143.0),
                (x(116.0), 136.0),
                (x(132.0), 135.0),
                (x(145.0), 140.0),
            ],
            2.5,
            FEATURE,
        );
        let eye = layout.at(x(124.0), 155.0);
        painter.add(Shape::ellipse_filled(
            eye,
            Vec2::new(13.0, 5.5) * scale,
            EYE_WHITE,
        ));
        painter.circle_filled(eye, 4.5 * scale, FEATURE);
        painter.add(Shape::ellipse_stroke(
            eye,
            Vec2::new(13.0, 5.5) * scale,
            Stroke::new(stroke_width(layout, 1.2), FEATURE),
        ));
        line(
            &[(x(148.0), 214.0), (x(153.0), 218.5), (x(160.0), 217.0)],
            1.5,
            FEATURE,
        );
        line(
            &[(x(140.0), 362.0), (x(112.0), 366.0), (x(88.0), 374.0)],
            1.5,
            OUTLINE,
        );
    }
    let mouth = [
        (147.0, 236.0),
        (156.0, 232.0),
        (174.0, 232.0),
        (183.0, 236.0),
        (174.0, 242.5),
        (156.0, 242.5),
    ];
    painter.add(Shape::convex_polygon(
        mouth.iter().map(|&(x, y)| layout.at(x, y)).collect(),
        LIPS,
        Stroke::new(stroke_width(layout, 1.0), FEATURE),
    ));
    line(
        &[(149.0, 236.5), (165.0, 238.0), (181.0, 236.5)],
        1.2,
        FEATURE,
    );
    line(
        &[(158.0, 232.5), (165.0, 234.5), (172.0, 232.5)],
        1.0,
        FEATURE,
    );

    // Hair: arcs inside the head above the hairline, faint so labels stay clear.
    let hair = FEATURE.gamma_multiply(0.35);
    for (fraction, from_deg, to_deg) in [(0.9_f32, -140.0_f32, -40.0_f32), (0.78, -122.0, -58.0)] {
        let points: Vec<Pos2> = (0..=24_u16)
            .map(|i| {
                let t = (from_deg + (to_deg - from_deg) * f32::from(i) / 24.0).to_radians();
                // Concentric with the head's ellipse (centre and radii as in `HEAD`).
                layout.at(
                    165.0 + 88.0 * fraction * t.cos(),
                    177.5 + 130.0 * fraction * t.sin(),
                )
            })
            .collect();
        painter.add(Shape::line(
            points,
            Stroke::new(stroke_width(layout, 1.2), hair),
        ));
    }
}

/// The body box's caption and silhouette.
fn paint_body_figure(painter: &Painter, layout: &FaceLayout) {
    let scale = layout.scale();
    painter.text(
        layout.at(357.0, 350.0),
        egui::Align2::CENTER_CENTER,
        "Body",
        FontId::proportional((11.5 * scale).max(8.0)),
        FEATURE,
    );
    let figure = Stroke::new(stroke_width(layout, 1.0), OUTLINE);
    painter.circle(layout.at(357.0, 371.0), 7.0 * scale, SKIN_SHADE, figure);
    let torso = [
        (347.0, 382.0),
        (367.0, 382.0),
        (364.0, 420.0),
        (350.0, 420.0),
    ];
    painter.add(Shape::convex_polygon(
        torso.iter().map(|&(x, y)| layout.at(x, y)).collect(),
        SKIN_SHADE,
        figure,
    ));
    let limb = Stroke::new(stroke_width(layout, 3.0), SKIN_SHADE);
    for [(x0, y0), (x1, y1)] in [
        [(347.0, 385.0), (337.0, 416.0)],
        [(367.0, 385.0), (377.0, 416.0)],
        [(352.0, 420.0), (349.0, 454.0)],
        [(362.0, 420.0), (365.0, 454.0)],
    ] {
        painter.line_segment([layout.at(x0, y0), layout.at(x1, y1)], limb);
    }
}

/// A zone's limit labels: the depth over "mm" on a light pill, a check mark when the
/// zone is treated, and the focus ring when its button has the keyboard focus.
fn paint_labels(
    painter: &Painter,
    visuals: &Visuals,
    layout: &FaceLayout,
    zone: &Zone,
    state: ZoneState,
    focused: bool,
) {
    let scale = layout.scale();
    let number = painter.layout_no_wrap(
        mm_number(zone.limit_um),
        FontId::proportional((12.0 * scale).max(8.0)),
        LABEL_TEXT,
    );
    let unit = painter.layout_no_wrap(
        "mm".to_owned(),
        FontId::proportional((9.0 * scale).max(7.0)),
        LABEL_TEXT,
    );
    let text_size = Vec2::new(
        number.size().x.max(unit.size().x),
        number.size().y + unit.size().y,
    );
    // The pill is the button's rect unless the text (at the minimum font size) needs
    // more.
    let size = (LABEL_SIZE * scale).max(text_size + Vec2::splat(4.0));
    let radius = 6.0 * scale;
    for &anchor in shape_of(zone.id).labels {
        let pill = Rect::from_center_size(layout.screen_pos(anchor), size);
        let border = if state == ZoneState::Active {
            Stroke::new(stroke_width(layout, 1.5), ACTIVE_STROKE)
        } else {
            Stroke::new(stroke_width(layout, 0.75), OUTLINE)
        };
        painter.rect(pill, radius, LABEL_FILL, border, StrokeKind::Inside);
        let top = pill.center().y - text_size.y / 2.0;
        let number_pos = Pos2::new(pill.center().x - number.size().x / 2.0, top);
        let unit_pos = Pos2::new(pill.center().x - unit.size().x / 2.0, top + number.size().y);
        painter.galley(number_pos, number.clone(), LABEL_TEXT);
        painter.galley(unit_pos, unit.clone(), LABEL_TEXT);
        if state == ZoneState::Treated {
            paint_check_badge(painter, layout, pill.right_top());
        }
        if focused {
            let ring = Stroke::new(stroke_width(layout, 2.0), visuals.selection.stroke.color);
            painter.rect_stroke(pill.expand(2.0 * scale), radius, ring, StrokeKind::Outside);
        }
    }
}

fn paint_check_badge(painter: &Painter, layout: &FaceLayout, center: Pos2) {
    let scale = layout.scale();
    painter.circle_filled(center, 6.0 * scale, TREATED_MARK);
    let tick = [(-3.0, 0.0), (-1.0, 2.5), (3.0, -2.5)]
        .iter()
        .map(|&(dx, dy)| center + Vec2::new(dx, dy) * scale)
        .collect();
    painter.add(Shape::line(
        tick,
        Stroke::new(stroke_width(layout, 1.5), Color32::WHITE),
    ));
}

/// What the three fills mean, top right where the face leaves room. Its text follows
/// the theme: it sits on the panel, not on the drawing.
fn paint_legend(painter: &Painter, visuals: &Visuals, layout: &FaceLayout) {
    let scale = layout.scale();
    let font = FontId::proportional((11.0 * scale).max(8.0));
    let states = [ZoneState::NotTreated, ZoneState::Active, ZoneState::Treated];
    for (row, state) in (0_u8..).zip(states) {
        let y = 16.0 + 18.0 * f32::from(row);
        let swatch = Rect::from_center_size(layout.at(308.0, y), Vec2::splat(12.0 * scale));
        painter.rect(
            swatch,
            2.0 * scale,
            state.fill(),
            Stroke::new(stroke_width(layout, 1.0), OUTLINE),
            StrokeKind::Inside,
        );
        painter.text(
            layout.at(320.0, y),
            egui::Align2::LEFT_CENTER,
            state.as_str(),
            font.clone(),
            visuals.text_color(),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use egui::{Event, Key, Modifiers, PointerButton};
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable as _;

    use super::*;

    /// The box at its design size, at the origin: design units are screen points.
    fn design_layout() -> FaceLayout {
        FaceLayout::new(Rect::from_min_size(Pos2::ZERO, GRID))
    }

    /// Layouts of several sizes and aspect ratios, some off the origin.
    fn layouts() -> Vec<FaceLayout> {
        [
            Rect::from_min_size(Pos2::ZERO, GRID),
            Rect::from_min_size(Pos2::new(10.0, 20.0), Vec2::new(160.0, 200.0)),
            Rect::from_min_size(Pos2::new(-50.0, 7.0), Vec2::new(1200.0, 400.0)),
            Rect::from_min_size(Pos2::new(3.0, 300.0), Vec2::new(300.0, 1000.0)),
            Rect::from_min_size(Pos2::new(0.5, 0.5), Vec2::new(817.0, 1021.0)),
        ]
        .into_iter()
        .map(FaceLayout::new)
        .collect()
    }

    #[test]
    fn zone_at_resolves_points_on_the_drawing() {
        fn check(design: (f32, f32), expected: Option<ZoneId>) {
            for layout in layouts() {
                let pos = layout.at(design.0, design.1);
                assert_eq!(
                    zone_at(&layout, pos),
                    expected,
                    "{design:?} in {:?}",
                    layout.rect()
                );
            }
        }
        // Overlaps go to the specific zone.
        check((124.0, 155.0), Some(ZoneId::Periorbital)); // left eye's centre
        check((206.0, 155.0), Some(ZoneId::Periorbital)); // right eye's centre
        check((165.0, 216.0), Some(ZoneId::Nose)); // tip, inside the mouth area's ellipse
        check((165.0, 180.0), Some(ZoneId::Nose)); // bridge, between the cheeks
        check((147.0, 236.0), Some(ZoneId::Perioral)); // mouth corners
        check((183.0, 236.0), Some(ZoneId::Perioral));
        check((165.0, 270.0), Some(ZoneId::Perioral)); // below the lip, over the chin
        // Both cheeks are one zone.
        check((100.0, 230.0), Some(ZoneId::Cheeks));
        check((230.0, 230.0), Some(ZoneId::Cheeks));
        // The jaw's band runs up the sides below the cheeks.
        check((112.0, 272.0), Some(ZoneId::ChinJawline));
        check((218.0, 272.0), Some(ZoneId::ChinJawline));
        check((165.0, 300.0), Some(ZoneId::ChinJawline));
        check((165.0, 140.0), Some(ZoneId::Forehead)); // between the brows
        check((165.0, 52.0), Some(ZoneId::Scalp)); // crown
        check((84.0, 140.0), Some(ZoneId::Scalp)); // temple, outside the hairline
        check((165.0, 312.0), Some(ZoneId::Neck)); // just below the chin
        check((165.0, 345.0), Some(ZoneId::Neck)); // over the décolleté's top edge
        check((60.0, 420.0), Some(ZoneId::Decollete)); // shoulder
        check((320.0, 338.0), Some(ZoneId::Body)); // the box's corner
        check((357.0, 420.0), Some(ZoneId::Body)); // the silhouette
        // Off the drawing.
        check((70.0, 182.0), None); // ear
        check((5.0, 5.0), None);
        check((330.0, 30.0), None); // legend
        check((395.0, 200.0), None);
        check((165.0, 498.0), None); // below the shoulders
        check((312.0, 450.0), None); // between the shoulder and the body box
    }

    #[test]
    fn zone_at_is_none_outside_the_box_and_for_an_empty_layout() {
        let layout = design_layout();
        for pos in [
            Pos2::new(-1.0, 200.0),
            Pos2::new(401.0, 400.0),
            Pos2::new(165.0, -0.5),
            Pos2::new(200.0, 600.0),
            Pos2::new(f32::NAN, 100.0),
        ] {
            assert_eq!(zone_at(&layout, pos), None, "{pos:?}");
        }
        let empty = FaceLayout::new(Rect::NOTHING);
        assert_eq!(zone_at(&empty, Pos2::ZERO), None);
        let point = FaceLayout::new(Rect::from_min_size(Pos2::new(4.0, 4.0), Vec2::ZERO));
        assert_eq!(zone_at(&point, Pos2::new(4.0, 4.0)), None);
    }

    #[test]
    fn every_label_and_button_lies_inside_its_own_zone_only() {
        // The whole pill, not just its centre: a click anywhere on the label would choose
        // the zone even if it went to the picture rather than the button.
        for layout in layouts() {
            for zone in ZoneId::ALL {
                let size = LABEL_SIZE * layout.scale();
                for &anchor in shape_of(zone).labels {
                    let pill = Rect::from_center_size(layout.screen_pos(anchor), size).shrink(0.01);
                    for corner in [
                        pill.center(),
                        pill.left_top(),
                        pill.right_top(),
                        pill.left_bottom(),
                        pill.right_bottom(),
                    ] {
                        assert_eq!(
                            zone_at(&layout, corner),
                            Some(zone),
                            "{zone} label at {corner:?} in {:?}",
                            layout.rect()
                        );
                    }
                }
                let target = layout.target_rect(zone);
                assert!(
                    target.center().distance(layout.anchor(zone)) < 1e-3,
                    "{zone}"
                );
                assert_eq!(zone_at(&layout, target.center()), Some(zone), "{zone}");
            }
        }
    }

    #[test]
    fn layout_keeps_the_aspect_and_centres_the_box() {
        fn check(given: Rect, expected: Rect) {
            let layout = FaceLayout::new(given);
            assert!(
                (layout.rect().min - expected.min).length() < 1e-3
                    && (layout.rect().max - expected.max).length() < 1e-3,
                "{given:?} gave {:?}",
                layout.rect()
            );
        }
        let at = |x, y, w, h| Rect::from_min_size(Pos2::new(x, y), Vec2::new(w, h));
        check(at(0.0, 0.0, 400.0, 500.0), at(0.0, 0.0, 400.0, 500.0));
        check(at(0.0, 0.0, 800.0, 500.0), at(200.0, 0.0, 400.0, 500.0));
        check(at(10.0, 10.0, 200.0, 1000.0), at(10.0, 385.0, 200.0, 250.0));
    }

    #[test]
    fn fitted_size_keeps_the_aspect_within_the_space() {
        fn check(available: Vec2, expected: Vec2) {
            let got = fitted_size(available);
            assert!(
                (got - expected).length() < 1e-3,
                "{available:?} gave {got:?}"
            );
        }
        check(Vec2::new(400.0, 500.0), Vec2::new(400.0, 500.0));
        check(Vec2::new(800.0, 500.0), Vec2::new(400.0, 500.0));
        check(Vec2::new(200.0, 900.0), Vec2::new(200.0, 250.0));
        check(Vec2::new(600.0, f32::INFINITY), Vec2::new(600.0, 750.0));
        check(Vec2::new(f32::INFINITY, f32::INFINITY), GRID);
        check(Vec2::new(10.0, 10.0), GRID * MIN_SCALE);
        check(Vec2::new(-5.0, 500.0), Vec2::new(400.0, 500.0));
    }

    #[test]
    fn the_geometry_is_well_formed() {
        // Every zone once in the hit order and once in the Tab order.
        for zone in ZoneId::ALL {
            assert_eq!(
                HIT_ORDER.iter().filter(|s| s.zone == zone).count(),
                1,
                "{zone}"
            );
            assert_eq!(
                TAB_ORDER.iter().filter(|&&z| z == zone).count(),
                1,
                "{zone}"
            );
            assert_eq!(shape_of(zone).zone, zone);
            let shape = shape_of(zone);
            assert_eq!(
                shape.labels.len(),
                shape.pieces.len(),
                "{zone}: a label per piece"
            );
        }
        // Polygons are convex (the fill and the clipping assume it)...
        for polygon in [NOSE_POLYGON, NECK_POLYGON, DECOLLETE_POLYGON] {
            let turns: Vec<f32> = polygon
                .iter()
                .zip(polygon.iter().cycle().skip(1))
                .zip(polygon.iter().cycle().skip(2))
                .map(|((&a, &b), &c)| (b - a).x * (c - b).y - (b - a).y * (c - b).x)
                .collect();
            assert!(
                turns.iter().all(|t| *t > 0.0) || turns.iter().all(|t| *t < 0.0),
                "{polygon:?}"
            );
        }
        // ...and every piece is visible somewhere: nothing is wholly hidden.
        let layout = design_layout();
        for (zone, outline) in zone_outlines(&layout) {
            assert!(
                !visible_edges(&layout, zone, &outline).is_empty(),
                "{zone}: a piece with no visible boundary"
            );
        }
        assert_eq!(zone_outlines(&layout).len(), 12);
    }

    #[test]
    fn clip_convex_cuts_a_square_by_a_half_plane_in_either_winding() {
        let square = [
            Pos2::new(0.0, 0.0),
            Pos2::new(2.0, 0.0),
            Pos2::new(2.0, 2.0),
            Pos2::new(0.0, 2.0),
        ];
        let left = [
            Pos2::new(-1.0, -1.0),
            Pos2::new(1.0, -1.0),
            Pos2::new(1.0, 3.0),
            Pos2::new(-1.0, 3.0),
        ];
        let mut reversed = left;
        reversed.reverse();
        for clip in [left, reversed] {
            let out = clip_convex(&square, &clip);
            let area: f32 = out
                .iter()
                .zip(out.iter().cycle().skip(1))
                .map(|(a, b)| a.x * b.y - b.x * a.y)
                .sum::<f32>()
                .abs()
                / 2.0;
            assert!((area - 2.0).abs() < 1e-5, "{out:?}");
        }
        assert!(clip_convex(&square, &[]).is_empty());
    }

    #[test]
    fn mm_number_drops_the_unit() {
        assert_eq!(mm_number(500), "0.50");
        assert_eq!(mm_number(1500), "1.50");
        assert_eq!(mm_um(300), "0.30 mm");
    }

    /// What the map reported, kept across frames.
    #[derive(Default)]
    struct Seen {
        clicked: Option<ZoneId>,
        hovered: Option<ZoneId>,
    }

    fn harness(enabled: bool) -> Harness<'static, Seen> {
        let table = ZoneTable::builtin();
        Harness::new_ui_state(
            move |ui, seen: &mut Seen| {
                let states = |zone| {
                    if zone == ZoneId::Forehead {
                        ZoneState::Treated
                    } else if zone == ZoneId::Nose {
                        ZoneState::Active
                    } else {
                        ZoneState::NotTreated
                    }
                };
                let r = face_map_ui(ui, &table, &states, enabled);
                if r.clicked.is_some() {
                    seen.clicked = r.clicked;
                }
                seen.hovered = r.hovered;
            },
            Seen::default(),
        )
    }

    #[test]
    fn clicking_a_zone_button_selects_that_zone() {
        let mut harness = harness(true);
        harness.run();
        harness.get_by_label("zone cheeks").click();
        harness.run();
        assert_eq!(harness.state().clicked, Some(ZoneId::Cheeks));
        for zone in ZoneId::ALL {
            harness.get_by_label(&format!("zone {zone}")).click();
            harness.run();
            assert_eq!(harness.state().clicked, Some(zone));
        }
    }

    #[test]
    fn clicking_the_drawing_selects_the_zone_under_the_pointer() {
        let cell = Rc::new(Cell::new(None));
        let seen = Rc::clone(&cell);
        let table = ZoneTable::builtin();
        let mut harness = Harness::new_ui(move |ui| {
            let r = face_map_ui(ui, &table, &|_| ZoneState::NotTreated, true);
            if r.clicked.is_some() {
                seen.set(r.clicked);
            }
        });
        harness.run();
        let layout = FaceLayout::new(harness.get_by_label("face map").rect());
        // Away from the labels, so the picture, not a button, takes these clicks.
        for (design, expected) in [
            ((206.0, 153.0), ZoneId::Periorbital), // right eye
            ((165.0, 218.0), ZoneId::Nose),
            ((181.0, 236.0), ZoneId::Perioral),
            ((232.0, 190.0), ZoneId::Cheeks),
            ((240.0, 400.0), ZoneId::Decollete),
            ((380.0, 350.0), ZoneId::Body),
        ] {
            let pos = layout.at(design.0, design.1);
            click_at(&harness, pos);
            harness.run();
            assert_eq!(cell.get(), Some(expected), "{design:?}");
        }
        cell.set(None);
        click_at(&harness, layout.at(70.0, 182.0)); // an ear
        harness.run();
        assert_eq!(cell.get(), None);
    }

    fn click_at<S>(harness: &Harness<'_, S>, pos: Pos2) {
        harness.hover_at(pos);
        for pressed in [true, false] {
            harness.event(Event::PointerButton {
                pos,
                button: PointerButton::Primary,
                pressed,
                modifiers: Modifiers::default(),
            });
        }
    }

    #[test]
    fn hovering_reports_the_zone_without_selecting_it() {
        let mut harness = harness(true);
        harness.run();
        harness.get_by_label("zone neck").hover();
        harness.run();
        assert_eq!(harness.state().hovered, Some(ZoneId::Neck));
        assert_eq!(harness.state().clicked, None);
        let layout = FaceLayout::new(harness.get_by_label("face map").rect());
        harness.hover_at(layout.at(124.0, 150.0));
        harness.run();
        assert_eq!(harness.state().hovered, Some(ZoneId::Periorbital));
        harness.hover_at(layout.at(5.0, 5.0));
        harness.run();
        assert_eq!(harness.state().hovered, None);
    }

    #[test]
    fn a_disabled_map_selects_nothing_but_still_reports_hover() {
        let mut harness = harness(false);
        harness.run();
        harness.get_by_label("zone cheeks").click();
        harness.run();
        assert_eq!(harness.state().clicked, None);
        assert_eq!(harness.state().hovered, Some(ZoneId::Cheeks));
        let layout = FaceLayout::new(harness.get_by_label("face map").rect());
        click_at(&harness, layout.at(124.0, 155.0));
        harness.run();
        assert_eq!(harness.state().clicked, None);
        assert_eq!(harness.state().hovered, Some(ZoneId::Periorbital));
        harness.key_press(Key::Tab);
        harness.run();
        harness.key_press(Key::Enter);
        harness.run();
        assert_eq!(harness.state().clicked, None);
    }

    #[test]
    fn tab_then_enter_or_space_selects_the_focused_zone() {
        let mut harness = harness(true);
        harness.run();
        harness.key_press(Key::Tab);
        harness.run();
        harness.key_press(Key::Enter);
        harness.run();
        assert_eq!(harness.state().clicked, Some(TAB_ORDER[0]));
        harness.key_press(Key::Tab);
        harness.run();
        harness.key_press(Key::Space);
        harness.run();
        assert_eq!(harness.state().clicked, Some(TAB_ORDER[1]));
    }
}
