"""Word lists for synthetic negatives (written for this project).

COMMON: everyday English words (negative speech and the material of random phrases).
SOUNDALIKE_POOL: longer words, names, places and brands with varied syllables; searched by
phonetic similarity to the keyword to find real words that sound partly like it.
"""

COMMON = """
a about above across act add after again against age ago air all almost alone along already also
always am among an and animal another answer any anything apple april are area arm around art as ask
at august away baby back bad bag ball bank bar base basket be bean bear beautiful became because bed
been before began begin behind being believe bell below best better between big bird birthday black
blue board boat body book born both bottle bottom box boy bread break breakfast bring brother brown
build building burn bus business busy but butter buy by cake call came camera can car card care carry
case cat catch center chair change cheap check cheese child children choose church city class clean
clear clock close cloud coat coffee cold color come common company cook cool corner could country
course cover cow cup cut dance dark daughter day dear december decide deep desk did dinner do doctor
does dog dollar done door down draw dream dress drink drive drop dry during each early earth east easy
eat egg eight either else end enough evening ever every example eye face fact fall family far farm
fast father february feel few field fight fill final find fine finger fire first fish five floor
flower fly follow food foot for forest forget form forward four free friday friend from front fruit
full fun game garden gave get girl give glass go gold gone good got grass great green ground group
grow guess had hair half hand happen happy hard has hat have he head hear heart heavy held hello help
her here high hill him his hold holiday home horse hot hour house how hundred hungry husband idea if
important in inside into iron is island it its january job join july jump june just keep kept kind
king kitchen knew know lady lake land large last late laugh lead learn leave left leg less letter
light like line list listen little live long look lost lot loud love low lunch made make man many map
march market may me mean measure meet middle might mile milk million mind minute miss moment monday
money month moon more morning most mother mountain move much music must my name near need never new
news next nice night nine no noise north nose not nothing notice november now number ocean october of
off office often oil old on once one only open or orange order other our out outside over own page
paint pair paper parent park part party pass past pay pen pencil people perhaps person pick picture
piece place plan plant play please pocket point poor possible power present pretty problem pull
purple push put question quick quiet rain ran reach read ready real reason red remember rest rich
ride right ring river road rock room round rule run said salt same saturday save saw say school sea
season second see seem sell send september seven shall she ship shirt shoe shop short should show
side sign simple since sing sister sit six sleep slow small smile snow so some something sometimes
son song soon sound south space speak spring square stand star start station stay step still stone
stop store story street strong student study such summer sun sunday supper sure sweet swim table
take talk tall tea teacher team tell ten than thank that the their them then there these they thing
think third this those though thought three through thursday time tired to today together told
tomorrow too took top touch town train travel tree true try tuesday turn twelve twenty two under
until up upon us use usual valley very village visit voice wait walk wall want warm was wash watch
water way we wear weather wednesday week well went were west what wheel when where which while white
who whole why wide wife wild will wind window winter wish with without woman wonder wood word work
world would write wrong yard year yellow yes yesterday yet you young your zero
""".split()

SOUNDALIKE_POOL = """
alaska albania alberta alchemy alexander alexandra alexis alfalfa algebra alibi alice allergy
alligator almanac alpaca amazon ambassador amelia america analysis anchor angela annex antenna
apex aqua arena athena atlas attic axis balance banana barista basil bella berlin bertha calendar
camera canada carrot cassette celeste cellar chelsea chester china christmas cinema collection
collector comfort commander commuter compass complex computer concert connect connection contact
context correct corrector cortex daisy dakota delta derek detect dexter direction echo
eclipse election electra electric elegant elephant elevator eleven elixir ella ellen elsa emma erica
espresso everest excel exit express extra felix fiesta flex galaxy gallery genesis germany
hector helix helen hexagon index inspector jakarta jasmine jarvis jessica kansas kettle lasagna
laser lecture legacy lemon lena lennox leopard lesson letter lexicon lexus lisa lottery lucky luxury
maxima melody mexico minnesota mister monica nebraska nexus nexa omega oxford panorama paxton
perfect perplexing plexiglass protect python rebecca reflex relax relaxing replica rex salsa select
selection sexton sierra silica sixty spectra taxi tequila texas text textile theresa tuxedo vanessa
vertex vodka wexford yoga zebra computing compute commuting community mercury microsoft mycroft
micro minecraft aircraft crafty microwave hey okay nabu nature navy google goggle giggle ticket
jarring jargon travis service harvest nervous marvin marvel starve carving jervis purpose hermes
athens ethan nathan amen seven heaven kevin melvin mervin melon sheldon sherlock sherpa mirror
mirage smart smarter marker market martian
""".split()
